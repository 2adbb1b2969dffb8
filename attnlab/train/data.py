"""Data for training the reference Transformer, all generated or read offline.

- the toy tasks: reversing strings of symbols (:func:`reverse_batch`, the one generator of the reverse
  task, used by the book's experiments, the bug hunt, problem set 8 and its checks), and copy, reverse
  and sort as text pairs for the training CLI (:func:`algorithmic_pairs`, drawn by the same generator);
- date normalisation: a date written out by CLDR (``babel``) in many languages -> ISO ``YYYY-MM-DD``;
- a parallel corpus in TSV (``source<TAB>target`` per line) that a user brings;
- length-bucketed batches through a ``DataLoader``.

The vocabularies that turn text into ids are in ``tokenizers.py``; the special ids in ``attnlab.tokens``.
"""
from __future__ import annotations

import datetime
import random
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..tokens import BOS_ID, EOS_ID, PAD_ID

Pair = tuple[str, str]


class DataError(ValueError):
    """Bad input data: a missing or malformed file, an empty corpus, an unknown task."""


# --------------------------------------------------------------------------------------------
# Toy tasks
# --------------------------------------------------------------------------------------------

# The toy tasks' symbols are the ids right after PAD, BOS and EOS: FIRST_SYMBOL, FIRST_SYMBOL + 1, ...
# (every symbol is known, so no id is set aside for an unknown one).
FIRST_SYMBOL = EOS_ID + 1


def reverse_batch(batch: int, min_len: int, max_len: int, num_symbols: int = 10,
                  generator: torch.Generator | None = None):
    """Random strings of symbols and their reversals, padded: the reverse task.

    Lengths are uniform in [min_len, max_len], symbols uniform in EOS_ID + 1 .. EOS_ID + num_symbols.
    Returns src (B, S) = symbols then PAD_ID, tgt_in (B, S+1) = BOS_ID + reversed, tgt_out (B, S+1) =
    reversed + EOS_ID (padded with PAD_ID), and the lengths (B,); S is the longest length drawn.
    """
    lengths = torch.randint(min_len, max_len + 1, (batch,), generator=generator)
    S = int(lengths.max())
    # EOS_ID + 1 is FIRST_SYMBOL, written out so that a notebook showing this function needs only the token ids.
    symbols = torch.randint(EOS_ID + 1, EOS_ID + 1 + num_symbols, (batch, S), generator=generator)
    positions = torch.arange(S)[None, :]  # (1, S)
    valid = positions < lengths[:, None]  # (B, S)
    src = symbols.masked_fill(~valid, PAD_ID)
    # reversed within each row's own length: position j of the target is source position len-1-j
    index = (lengths[:, None] - 1 - positions).clamp(min=0)  # (B, S)
    rev = src.gather(1, index).masked_fill(~valid, PAD_ID)
    tgt_in = torch.cat([torch.full((batch, 1), BOS_ID), rev], 1)  # (B, S+1)
    tgt_out = torch.cat([rev, torch.full((batch, 1), PAD_ID)], 1)  # (B, S+1)
    tgt_out[torch.arange(batch), lengths] = EOS_ID
    return src, tgt_in, tgt_out, lengths


ALGORITHMIC_TASKS = ("copy", "reverse", "sort")


def algorithmic_pairs(task: str, n: int, min_len: int = 1, max_len: int = 10,
                      alphabet: str = "abcdefghij", seed: int = 0) -> list[Pair]:
    """``n`` pairs of a random string (length uniform in [min_len, max_len]) and its copy/reversal/sorting.

    The strings are :func:`reverse_batch`'s, its symbols written as letters of ``alphabet``; the reverse
    task's targets are its reversals.
    """
    if task not in ALGORITHMIC_TASKS:
        raise DataError(f"unknown algorithmic task {task!r}; choose one of {ALGORITHMIC_TASKS}")
    if not 1 <= min_len <= max_len:
        raise DataError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    if not alphabet:
        raise DataError("alphabet must not be empty")
    if n <= 0:
        return []
    generator = torch.Generator().manual_seed(seed)
    src, _, tgt_out, lengths = reverse_batch(n, min_len, max_len, len(alphabet), generator)

    def text(ids: list[int]) -> str:
        return "".join(alphabet[i - FIRST_SYMBOL] for i in ids)

    pairs = []
    for s_ids, t_ids, length in zip(src.tolist(), tgt_out.tolist(), lengths.tolist()):
        s = text(s_ids[:length])
        t = {"copy": s, "reverse": text(t_ids[:length]), "sort": "".join(sorted(s))}[task]
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
    return [(src, date.isoformat()) for src, date, _ in _written_dates(n, locales, formats, seed, exclude)]


def _written_dates(n: int, locales: Sequence[str], formats: Sequence[str], seed: int, exclude,
                   keep=lambda src, date, locale, fmt: True) -> list[tuple[str, datetime.date, str]]:
    """``n`` distinct (written date, date, locale) triples that ``keep`` accepts: the generator of the
    dates task (:func:`date_pairs`) and of the locale task (:func:`locale_pairs`)."""
    rng = random.Random(seed)
    examples, seen = [], set(exclude)
    attempts = 0
    while len(examples) < n:
        attempts += 1
        if attempts > 20 * n + 1000:
            raise DataError(f"could only make {len(examples)} distinct dates of the {n} asked for")
        date = _random_date(rng)
        locale, fmt = rng.choice(locales), rng.choice(formats)
        src = format_date(date, locale, fmt)
        if src in seen or not keep(src, date, locale, fmt):
            continue
        seen.add(src)
        examples.append((src, date, locale))
    return examples


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


# The locale task: which training locale wrote a date? (a classification task, for an encoder-only model;
# its target is the locale's code, so a sequence-to-sequence model can learn it as well).
LOCALE_LABELS = DATE_LOCALES


def _look_alike_locales(locales: Sequence[str], formats: Sequence[str]) -> dict[tuple[str, str], tuple[str, ...]]:
    """(locale, format) -> the other locales that write some date of a probe year (every month, every
    weekday) exactly alike in that format: e.g. zh and ja write long dates alike (``2026年12月1日``)."""
    probes = [datetime.date(2001, month, day) for month in range(1, 13) for day in range(1, 8)]
    alike: dict[tuple[str, str], set[str]] = {(loc, fmt): set() for loc in locales for fmt in formats}
    for fmt in formats:
        for date in probes:
            writers: dict[str, list[str]] = {}
            for loc in locales:
                writers.setdefault(format_date(date, loc, fmt), []).append(loc)
            for group in writers.values():
                for loc in group:
                    alike[loc, fmt].update(other for other in group if other != loc)
    return {key: tuple(sorted(others)) for key, others in alike.items()}


def locale_pairs(n: int, locales: Sequence[str] = LOCALE_LABELS, formats: Sequence[str] = DATE_FORMATS,
                 seed: int = 0, exclude: set[str] | frozenset[str] = frozenset()) -> list[Pair]:
    """``n`` distinct (written date, locale code) pairs, drawn as :func:`date_pairs` draws its dates.

    A date that another of ``locales`` writes exactly alike in the same format is left out (``1 mai 2026``
    is French and Romanian), so every source has one right answer and a perfect classifier scores 100 %.
    """
    alike = _look_alike_locales(locales, formats)

    def unambiguous(src, date, locale, fmt):
        return all(format_date(date, other, fmt) != src for other in alike[locale, fmt])

    return [(src, locale) for src, _, locale in _written_dates(n, locales, formats, seed, exclude, unambiguous)]


def locale_splits(n_train: int = 100_000, n_valid: int = 1000, n_test: int = 2000, seed: int = 0,
                  locales: Sequence[str] = LOCALE_LABELS) -> dict[str, list[Pair]]:
    """Train, valid and test splits of the locale task (no source shared among them); no held-out split:
    a locale never seen in training is a class the model does not have."""
    test = locale_pairs(n_test, locales, seed=seed * 1000 + 5)
    valid = locale_pairs(n_valid, locales, seed=seed * 1000 + 6, exclude={s for s, _ in test})
    train = locale_pairs(n_train, locales, seed=seed * 1000 + 7, exclude={s for s, _ in test + valid})
    return {"train": train, "valid": valid, "test": test}


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


# A decoder-only model reads a pair as one sequence, ``source <sep> target <eos>``. Its separator is BOS,
# the token that starts the encoder-decoder's target: the source ids followed by PairDataset's target ids
# (BOS, target, EOS) are the whole prompt-and-answer, and no vocabulary needs a token of its own for it.
SEP_ID = BOS_ID


class PromptDataset(PairDataset):
    """A :class:`PairDataset` read by a decoder-only model: item i is the same (source ids, BOS + target
    ids + EOS); :meth:`collate` joins them into one sequence and marks which positions are predicted."""

    def lengths(self) -> list[int]:
        return [len(s) + len(t) for s, t in zip(self.src, self.tgt)]

    @staticmethod
    def collate(items, target_only: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """[(src ids, tgt ids), ...] -> tokens (B, L) = ``source <sep> target <eos>`` and labels (B, L):
        the tokens where they are to be predicted, ``PAD_ID`` elsewhere (padding, and with
        ``target_only`` the source and the separator), so that ``causal_lm_loss(logits, labels)`` is
        the loss on the answer alone."""
        tokens = pad_batch([s + t for s, t in items])
        if not target_only:
            return tokens, tokens
        return tokens, pad_batch([[PAD_ID] * (len(s) + 1) + t[1:] for s, t in items])


class LabelledDataset(Dataset):
    """Sequences and their classes, for an encoder-only classifier: item i is ([CLS] + source ids, class
    index). The first token, BOS, plays BERT's [CLS]: the model classifies from its vector."""

    def __init__(self, pairs: Sequence[Pair], vocab, labels):
        if not pairs:
            raise DataError("empty corpus: no pairs to make a dataset from")
        self.pairs = list(pairs)
        self.src = [[BOS_ID] + vocab.encode(s) for s, _ in pairs]
        self.labels = [labels.encode(t) for _, t in pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        return self.src[i], self.labels[i]

    def lengths(self) -> list[int]:
        return [len(s) for s in self.src]

    @staticmethod
    def collate(items) -> tuple[torch.Tensor, torch.Tensor]:
        """[(ids, class), ...] -> tokens (B, L) padded with ``PAD_ID``, classes (B,)."""
        return pad_batch([s for s, _ in items]), torch.tensor([c for _, c in items], dtype=torch.long)


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
