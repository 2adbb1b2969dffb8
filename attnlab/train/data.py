"""Data for training the reference Transformer, all generated or read offline.

- algorithmic tasks (copy, reverse, sort) for smoke tests;
- date normalisation: a date written out by CLDR (``babel``) in many languages -> ISO ``YYYY-MM-DD``;
- a parallel corpus in TSV (``source<TAB>target`` per line) that a user brings;
- tokenizers: characters (:class:`CharVocab`) or a BPE trained locally with ``tokenizers`` (:class:`BPEVocab`),
  both with ``pad=0, bos=1, eos=2, unk=3``;
- length-bucketed batches through a ``DataLoader``.

Everything here imports the model code's conventions (``pad_id``) but never the other way round.
"""
from __future__ import annotations

import datetime
import json
import random
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")

Pair = tuple[str, str]


class DataError(ValueError):
    """Bad input data: a missing or malformed file, an empty corpus, an unknown task."""


# --------------------------------------------------------------------------------------------
# Algorithmic tasks
# --------------------------------------------------------------------------------------------

ALGORITHMIC_TASKS = ("copy", "reverse", "sort")


def algorithmic_pairs(task: str, n: int, min_len: int = 1, max_len: int = 10,
                      alphabet: str = "abcdefghij", seed: int = 0) -> list[Pair]:
    """``n`` pairs of a random string (length uniform in [min_len, max_len]) and its copy/reversal/sorting."""
    if task not in ALGORITHMIC_TASKS:
        raise DataError(f"unknown algorithmic task {task!r}; choose one of {ALGORITHMIC_TASKS}")
    if not 1 <= min_len <= max_len:
        raise DataError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    if not alphabet:
        raise DataError("alphabet must not be empty")
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(min_len, max_len)))
        t = {"copy": s, "reverse": s[::-1], "sort": "".join(sorted(s))}[task]
        pairs.append((s, t))
    return pairs


# --------------------------------------------------------------------------------------------
# Dates from CLDR
# --------------------------------------------------------------------------------------------

# 26 training locales, among them non-Latin scripts (ru, uk, el, zh, ja, ko).
DATE_LOCALES = (
    "en", "en_GB", "de", "fr", "es", "it", "pt", "nl", "sv", "da", "fi", "pl", "cs",
    "hu", "ro", "tr", "ru", "uk", "el", "zh", "ja", "ko", "vi", "id", "hr", "lt",
)
# Never seen in training: each is related to a training locale (nb~da, sk~cs, sl~hr, bg/sr~ru/uk, et~fi).
HELDOUT_LOCALES = ("nb", "sk", "sl", "et", "bg", "sr")
# Short formats are left out: many locales write two-digit years, which makes the target ambiguous.
DATE_FORMATS = ("medium", "long", "full")
DATE_FIRST = datetime.date(1900, 1, 1)
DATE_LAST = datetime.date(2099, 12, 31)


def _random_date(rng: random.Random) -> datetime.date:
    return DATE_FIRST + datetime.timedelta(days=rng.randrange((DATE_LAST - DATE_FIRST).days + 1))


def format_date(date: datetime.date, locale: str, fmt: str) -> str:
    from babel.dates import format_date as babel_format_date  # imported late: only the dates task needs babel

    return babel_format_date(date, fmt, locale=locale)


def date_pairs(n: int, locales: Sequence[str] = DATE_LOCALES, formats: Sequence[str] = DATE_FORMATS,
               seed: int = 0, exclude: set[str] | frozenset[str] = frozenset()) -> list[Pair]:
    """``n`` distinct (written date, ISO date) pairs, dates uniform in 1900-01-01..2099-12-31.

    Locale and format are drawn uniformly. Sources in ``exclude`` and repeated sources are skipped,
    so the pairs are unique and disjoint from ``exclude``.
    """
    rng = random.Random(seed)
    pairs, seen = [], set(exclude)
    attempts = 0
    while len(pairs) < n:
        attempts += 1
        if attempts > 20 * n + 1000:
            raise DataError(f"could only make {len(pairs)} distinct dates of the {n} asked for")
        date = _random_date(rng)
        src = format_date(date, rng.choice(locales), rng.choice(formats))
        if src in seen:
            continue
        seen.add(src)
        pairs.append((src, date.isoformat()))
    return pairs


def dates_splits(n_train: int = 100_000, n_valid: int = 1000, n_test: int = 2000, n_heldout: int = 1000,
                 seed: int = 0, locales: Sequence[str] = DATE_LOCALES,
                 heldout_locales: Sequence[str] = HELDOUT_LOCALES) -> dict[str, list[Pair]]:
    """Train, valid and test splits (no source string shared among them) and a held-out-locales split.

    Test and valid are drawn first from their own seeds, so they do not change with ``n_train``.
    """
    overlap = set(locales) & set(heldout_locales)
    if overlap:
        raise DataError(f"held-out locales {sorted(overlap)} are also training locales")
    test = date_pairs(n_test, locales, seed=seed * 1000 + 1)
    valid = date_pairs(n_valid, locales, seed=seed * 1000 + 2, exclude={s for s, _ in test})
    train = date_pairs(n_train, locales, seed=seed * 1000 + 3, exclude={s for s, _ in test + valid})
    heldout = date_pairs(n_heldout, heldout_locales, seed=seed * 1000 + 4) if n_heldout else []
    return {"train": train, "valid": valid, "test": test, "heldout": heldout}


# --------------------------------------------------------------------------------------------
# A parallel corpus in TSV
# --------------------------------------------------------------------------------------------

def read_tsv(path: str | Path) -> list[Pair]:
    """Read ``source<TAB>target`` lines. Blank lines are skipped; anything else needs exactly one tab."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"TSV file not found: {path} (expected one 'source<TAB>target' pair per line)")
    pairs = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise DataError(
                    f"{path}:{lineno}: expected 'source<TAB>target' with both sides non-empty, "
                    f"got {len(fields) - 1} tab(s): {line[:60]!r}"
                )
            pairs.append((fields[0], fields[1]))
    if not pairs:
        raise DataError(f"{path} holds no sentence pairs; an empty corpus cannot be trained on")
    return pairs


def split_pairs(pairs: Sequence[Pair], valid_fraction: float = 0.05, test_fraction: float = 0.05,
                seed: int = 0) -> dict[str, list[Pair]]:
    """Shuffle and split a corpus so that no source string is in two splits (duplicates go together)."""
    sources = sorted({s for s, _ in pairs})
    random.Random(seed).shuffle(sources)
    n_test = max(1, int(len(sources) * test_fraction)) if len(sources) >= 3 else 0
    n_valid = max(1, int(len(sources) * valid_fraction)) if len(sources) >= 3 else 0
    test_src = set(sources[:n_test])
    valid_src = set(sources[n_test:n_test + n_valid])
    out = {"train": [], "valid": [], "test": []}
    for s, t in pairs:
        out["test" if s in test_src else "valid" if s in valid_src else "train"].append((s, t))
    return out


# --------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------

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


def vocab_from_dict(d: dict):
    if d.get("kind") == "char":
        return CharVocab(d["symbols"])
    if d.get("kind") == "bpe":
        from tokenizers import Tokenizer

        return BPEVocab(Tokenizer.from_str(d["tokenizer"]))
    raise DataError(f"unknown vocabulary kind {d.get('kind')!r}")


def build_vocab(kind: str, texts: Sequence[str], bpe_vocab_size: int = 2000):
    if kind == "char":
        return CharVocab.build(texts)
    if kind == "bpe":
        return BPEVocab.train(texts, vocab_size=bpe_vocab_size)
    raise DataError(f"unknown tokenizer {kind!r}; choose 'char' or 'bpe'")


# --------------------------------------------------------------------------------------------
# Tensors and batches
# --------------------------------------------------------------------------------------------

class PairDataset(Dataset):
    """Encoded pairs: item i is (source ids, target ids with BOS and EOS), both lists of ints."""

    def __init__(self, pairs: Sequence[Pair], src_vocab, tgt_vocab):
        if not pairs:
            raise DataError("empty corpus: no pairs to make a dataset from")
        self.pairs = list(pairs)
        self.src = [src_vocab.encode(s) for s, _ in pairs]
        self.tgt = [tgt_vocab.encode(t, add_bos=True, add_eos=True) for _, t in pairs]
        for i, s in enumerate(self.src):
            if not s:
                raise DataError(f"pair {i} has a source with no tokens: {pairs[i][0]!r}")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        return self.src[i], self.tgt[i]

    def lengths(self) -> list[int]:
        return [max(len(s), len(t)) for s, t in zip(self.src, self.tgt)]


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int = PAD_ID) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def collate_pairs(items) -> tuple[torch.Tensor, torch.Tensor]:
    """[(src ids, tgt ids), ...] -> src (B, S), tgt (B, T), padded with ``PAD_ID``."""
    return pad_batch([s for s, _ in items]), pad_batch([t for _, t in items])


class BucketBatchSampler(Sampler):
    """Batches of similar length, so that little of each batch is padding.

    Each epoch shuffles the indices (seeded by ``seed + epoch``), sorts them by length within pools of
    ``pool`` batches, cuts the pools into batches and shuffles the batches. ``set_epoch`` picks the epoch,
    as with ``DistributedSampler``; every process of a data-parallel run sees the same global batches.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, pool: int = 50):
        if batch_size < 1:
            raise DataError(f"batch_size must be at least 1, got {batch_size}")
        self.lengths = list(lengths)
        self.batch_size, self.shuffle, self.seed, self.drop_last, self.pool = batch_size, shuffle, seed, drop_last, pool
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        idx = list(range(len(self.lengths)))
        rng = random.Random(self.seed + self.epoch)
        if self.shuffle:
            rng.shuffle(idx)
        size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(idx), size):
            chunk = sorted(idx[start:start + size], key=lambda i: self.lengths[i])
            batches += [chunk[j:j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def make_loader(dataset: PairDataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                drop_last: bool = False, bucket: bool = True) -> DataLoader:
    """A ``DataLoader`` of (src (B, S), tgt (B, T)) batches; bucketed by length unless ``bucket=False``."""
    lengths = dataset.lengths() if bucket else [0] * len(dataset)
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last,
                                 pool=50 if bucket else 1)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs)


def save_pairs(pairs: Sequence[Pair], path: str | Path) -> None:
    Path(path).write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")


def describe(pairs: Sequence[Pair]) -> str:
    return json.dumps({"pairs": len(pairs), "example": list(pairs[0]) if pairs else None}, ensure_ascii=False)
