"""Data: algorithmic tasks, CLDR dates, TSV loading, tokenizers and length-bucketed batches."""
import datetime

import pytest
import torch

from attnlab.tokens import SPECIALS
from attnlab.train import data as D
from attnlab.train import tokenizers as tok


@pytest.mark.parametrize("task,fn", [("copy", lambda s: s), ("reverse", lambda s: s[::-1]),
                                     ("sort", lambda s: "".join(sorted(s)))])
def test_algorithmic_pairs(task, fn):
    pairs = D.algorithmic_pairs(task, 50, min_len=3, max_len=7, seed=1)
    assert len(pairs) == 50
    assert all(3 <= len(s) <= 7 and t == fn(s) for s, t in pairs)
    assert pairs == D.algorithmic_pairs(task, 50, min_len=3, max_len=7, seed=1)
    assert pairs != D.algorithmic_pairs(task, 50, min_len=3, max_len=7, seed=2)


def test_algorithmic_unknown_task():
    with pytest.raises(D.DataError, match="unknown algorithmic task 'rotate'"):
        D.algorithmic_pairs("rotate", 3)


def test_dates_splits_disjoint_and_valid():
    sp = D.dates_splits(n_train=300, n_valid=50, n_test=80, n_heldout=40, seed=0)
    assert [len(sp[k]) for k in ("train", "valid", "test", "heldout")] == [300, 50, 80, 40]
    src = {k: {s for s, _ in v} for k, v in sp.items()}
    assert not src["train"] & src["valid"] and not src["train"] & src["test"] and not src["valid"] & src["test"]
    for s, t in sp["train"] + sp["heldout"]:
        d = datetime.date.fromisoformat(t)
        assert D.DATE_FIRST <= d <= D.DATE_LAST and len(t) == 10
    assert sp == D.dates_splits(n_train=300, n_valid=50, n_test=80, n_heldout=40, seed=0)
    # Test and valid do not depend on the size of the training set.
    assert D.dates_splits(n_train=10, n_valid=50, n_test=80, n_heldout=0)["test"] == sp["test"]


def test_dates_locales_and_formats():
    assert len(D.DATE_LOCALES) >= 20
    assert {"zh", "ja", "ko", "ru", "el"} <= set(D.DATE_LOCALES)
    assert not set(D.HELDOUT_LOCALES) & set(D.DATE_LOCALES)
    d = datetime.date(2026, 11, 24)
    assert D.format_date(d, "zh", "long") == "2026年11月24日"
    assert D.format_date(d, "de", "long") == "24. November 2026"
    assert "2026" in D.format_date(d, "el", "full")


def test_dates_sources_determine_targets():
    pairs = D.date_pairs(3000, seed=5)
    seen = {}
    for s, t in pairs:
        assert seen.setdefault(s, t) == t
    assert len(seen) == 3000  # sources are unique


def test_heldout_overlap_is_an_error():
    with pytest.raises(D.DataError, match="also training locales"):
        D.dates_splits(10, 5, 5, 5, heldout_locales=("de",))


def test_read_tsv(tmp_path):
    p = tmp_path / "c.tsv"
    p.write_text("a b\tx y\n\nc\tz\r\n", encoding="utf-8")
    assert D.read_tsv(p) == [("a b", "x y"), ("c", "z")]


def test_read_tsv_missing(tmp_path):
    with pytest.raises(D.DataError, match="TSV file not found: .*nope.tsv"):
        D.read_tsv(tmp_path / "nope.tsv")


@pytest.mark.parametrize("bad", ["no tab here", "a\tb\tc", "\tonly target"])
def test_read_tsv_malformed_says_which_line(tmp_path, bad):
    p = tmp_path / "c.tsv"
    p.write_text(f"a\tb\nc\td\n{bad}\n", encoding="utf-8")
    with pytest.raises(D.DataError, match=r"c.tsv:3: expected 'source<TAB>target'"):
        D.read_tsv(p)


def test_read_tsv_empty(tmp_path):
    p = tmp_path / "e.tsv"
    p.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(D.DataError, match="no sentence pairs"):
        D.read_tsv(p)


def test_split_pairs_keeps_duplicates_together():
    pairs = [(f"s{i % 40}", f"t{i}") for i in range(100)]
    sp = D.split_pairs(pairs, 0.1, 0.1, seed=0)
    assert sum(len(v) for v in sp.values()) == 100
    srcs = [{s for s, _ in v} for v in sp.values()]
    assert not (srcs[0] & srcs[1] or srcs[0] & srcs[2] or srcs[1] & srcs[2])


def test_char_vocab_roundtrip_and_specials():
    v = tok.CharVocab.build(["hello", "wörld"])
    assert (v.pad_id, v.bos_id, v.eos_id, v.unk_id) == (0, 1, 2, 3)
    assert v.itos[:4] == list(SPECIALS)
    ids = v.encode("hello", add_bos=True, add_eos=True)
    assert ids[0] == 1 and ids[-1] == 2
    assert v.decode(ids + [5, 6]) == "hello"  # stops at EOS
    assert v.encode("z") == [3]
    assert tok.vocab_from_dict(v.to_dict()).itos == v.itos


def test_bpe_vocab_numbers_are_kept_apart():
    pairs = D.date_pairs(2000, seed=0)
    texts = [s for s, _ in pairs] + [t for _, t in pairs]
    v = tok.BPEVocab.train(texts, vocab_size=600)
    assert [v.tokenizer.id_to_token(i) for i in range(4)] == list(SPECIALS)
    for s, t in pairs[:200]:  # lossless: whitespace is kept as tokens
        assert v.decode(v.encode(t, add_bos=True, add_eos=True)) == t
        assert v.decode(v.encode(s)) == s
    toks = [v.tokenizer.id_to_token(i) for i in v.encode("2026年11月24日")]
    assert "年" in toks[1] and not any(c.isdigit() for c in toks[1])
    v2 = tok.vocab_from_dict(v.to_dict())
    assert v2.encode(pairs[0][0]) == v.encode(pairs[0][0])
    assert len(v.encode(pairs[0][0])) < len(pairs[0][0])


def test_bucketed_loader_pads_and_covers_every_pair():
    pairs = D.algorithmic_pairs("copy", 103, 1, 20, seed=0)
    v = tok.CharVocab.build(s for s, _ in pairs)
    ds = D.PairDataset(pairs, v, v)
    loader = D.make_loader(ds, batch_size=10, shuffle=True, seed=3)
    seen, pad_frac_bucket = [], []
    for src, tgt in loader:
        assert src.dtype == torch.long and tgt[:, 0].eq(v.bos_id).all()
        seen += [v.decode(r) for r in src]
        pad_frac_bucket.append(src.eq(0).float().mean().item())
    assert sorted(seen) == sorted(s for s, _ in pairs)
    unbucketed = [s.eq(0).float().mean().item() for s, _ in D.make_loader(ds, 10, seed=3, bucket=False)]
    assert sum(pad_frac_bucket) < sum(unbucketed)
    # The same seed and epoch give the same batches; another epoch gives others.
    s = loader.batch_sampler
    b0 = s.batches(); s.set_epoch(1); b1 = s.batches(); s.set_epoch(0)
    assert b0 == s.batches() and b0 != b1


def test_empty_dataset():
    with pytest.raises(D.DataError, match="empty corpus"):
        D.PairDataset([], tok.CharVocab([]), tok.CharVocab([]))


def test_bpe_decodes_sentences_exactly():
    text = "Hello, world!  How are you?"
    v = tok.BPEVocab.train([text, "Hello there."] * 3, vocab_size=80)
    assert v.decode(v.encode(text)) == text
    assert v.encode("§") == [v.unk_id]
