"""Vocabularies: text <-> token ids, by characters (:class:`CharVocab`) or by a byte-pair encoding
trained locally with the ``tokenizers`` library (:class:`BPEVocab`).

Both start with the special ids of ``attnlab.tokens`` (``<pad> <bos> <eos> <unk>`` = 0, 1, 2, 3) and
serialise to a plain dict (``to_dict``, ``vocab_from_dict``), so a checkpoint restores the vocabulary
it was trained with.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from ..tokens import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID
from .data import DataError


class CharVocab:
    """One token per character; ids 0-3 are ``<pad> <bos> <eos> <unk>``, unseen characters map to ``<unk>``."""

    kind = "char"
    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID

    def __init__(self, symbols: Iterable[str]):
        self.itos = list(SPECIALS) + [s for s in symbols if s not in SPECIALS]
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise DataError("vocabulary symbols must be unique")

    @classmethod
    def build(cls, texts: Iterable[str]) -> "CharVocab":
        return cls(sorted({c for t in texts for c in t}))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = [self.stoi.get(c, UNK_ID) for c in text]
        return ([BOS_ID] if add_bos else []) + ids + ([EOS_ID] if add_eos else [])

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text: stops at the first EOS, skips padding and BOS."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else SPECIALS[UNK_ID])
        return "".join(out)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "symbols": self.itos[len(SPECIALS):]}


class BPEVocab:
    """Byte-pair encoding trained locally with the ``tokenizers`` library.

    Pre-tokenisation isolates runs of whitespace and punctuation marks, and keeps runs of digits apart,
    so that a number such as a year becomes its own token (or a few) instead of merging with the letters
    around it (``2026年`` -> ``2026``, ``年``). Whitespace is kept as tokens, so decoding is the plain
    concatenation of the tokens and gives back the text exactly (unless it held characters never seen
    in training, which become ``<unk>``).
    """

    kind = "bpe"
    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        for i, s in enumerate(SPECIALS):
            if tokenizer.token_to_id(s) != i:
                raise DataError(f"BPE tokenizer must map {s} to id {i}")

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 2000, min_frequency: int = 2) -> "BPEVocab":
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE(unk_token=SPECIALS[UNK_ID]))
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(r"\s+"), behavior="isolated"), pre_tokenizers.Punctuation(),
             pre_tokenizers.Digits(individual_digits=False)]
        )
        tok.decoder = decoders.Fuse()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=list(SPECIALS), show_progress=False)
        tok.train_from_iterator(list(texts), trainer=trainer)
        return cls(tok)

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return ([BOS_ID] if add_bos else []) + ids + ([EOS_ID] if add_eos else [])

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                out.append(i)
        return "".join(self.tokenizer.id_to_token(i) or SPECIALS[UNK_ID] for i in out)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokenizer": self.tokenizer.to_str()}


class Labels:
    """The classes of a classification task (an encoder-only model's "target vocabulary"): name <-> index."""

    kind = "labels"

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        if len(self.index) != len(self.names):
            raise DataError("class names must be unique")

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, name: str) -> int:
        if name not in self.index:
            raise DataError(f"unknown class {name!r}; the classes are {self.names}")
        return self.index[name]

    def decode(self, index: int) -> str:
        return self.names[int(index)]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "names": self.names}


def vocab_from_dict(d: dict):
    """The vocabulary (or class list) that ``to_dict`` wrote (as a checkpoint stores it)."""
    if d.get("kind") == "labels":
        return Labels(d["names"])
    if d.get("kind") == "char":
        return CharVocab(d["symbols"])
    if d.get("kind") == "bpe":
        from tokenizers import Tokenizer

        return BPEVocab(Tokenizer.from_str(d["tokenizer"]))
    raise DataError(f"unknown vocabulary kind {d.get('kind')!r}")


def build_vocab(kind: str, texts: Sequence[str], bpe_vocab_size: int = 2000):
    """A ``"char"`` or ``"bpe"`` vocabulary built from ``texts`` (the training split only)."""
    if kind == "char":
        return CharVocab.build(texts)
    if kind == "bpe":
        return BPEVocab.train(texts, vocab_size=bpe_vocab_size)
    raise DataError(f"unknown tokenizer {kind!r}; choose 'char' or 'bpe'")
