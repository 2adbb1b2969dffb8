"""Beam search keeps k hypotheses alive, stops exactly, and beats the old stop-at-k-finished search.

The search (attnlab.decoding.beam_search): the k live hypotheses give their 2k best extensions; those
among the best k that end in EOS finish, the best k others stay live; the search stops when no live
hypothesis can beat the best finished one under the GNMT length penalty. The models here are tables of
next-token logits indexed by (position, previous token), so every score can be computed exactly.
"""
import itertools
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from attnlab import Transformer, TransformerConfig, beam_search, greedy_decode, length_penalty_gnmt
from attnlab.tokens import BOS_ID as BOS, EOS_ID as EOS

PAD = 0


class TableModel(nn.Module):
    """logits of the token at position t+1 = table[t, token at t]; the source is ignored."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.config = SimpleNamespace(pad_id=PAD, tgt_vocab_size=table.size(-1))
        self.register_buffer("table", table.double())  # (positions, V, V)

    def encode(self, src):
        return torch.zeros(src.size(0), 1, 1, dtype=torch.float64)  # (B, 1, 1): beam_search expands it

    def decode(self, tgt, memory, src):
        return self.table[torch.arange(tgt.size(1)), tgt]  # (B, T, V)

    def logp(self, prefix):
        """log p(next token | prefix), prefix = [BOS, ...] -> (V,)"""
        return torch.log_softmax(self.table[len(prefix) - 1, prefix[-1]], -1)


def random_table(seed, V=6, positions=8):
    g = torch.Generator().manual_seed(seed)
    table = 2.0 * torch.randn(positions, V, V, generator=g, dtype=torch.float64)
    table[..., PAD] = table[..., BOS] = -30.0  # (almost) never padding or BOS
    return table


def score(model, seq, alpha, max_len):
    """log p(seq) / lp(|seq|) for a finished sequence or one cut at max_len."""
    prefix, total = [BOS], 0.0
    for tok in seq:
        total += model.logp(prefix)[tok].item()
        prefix.append(tok)
    return total / length_penalty_gnmt(len(seq), alpha)


def search(model, k, max_len, alpha, rule):
    """Reference searches on a TableModel, returning the best hypothesis (without BOS).

    rule "old": the search before issue 14: the top k extensions; EOS ones finish and shrink the live
    beam; stop once k have finished. rule "full": the new search without its early stop (runs to max_len).
    """
    live, finished = [([BOS], 0.0)], []
    for step in range(1, max_len + 1):
        cand = sorted(((s + lp, prefix + [tok]) for prefix, s in live
                       for tok, lp in enumerate(model.logp(prefix).tolist())), key=lambda c: -c[0])
        live = []
        for rank, (s, seq) in enumerate(cand[: k if rule == "old" else 2 * k]):
            if seq[-1] == EOS:
                if rank < k:
                    finished.append((s / length_penalty_gnmt(step, alpha), seq[1:]))
            elif len(live) < k:
                live.append((seq, s))
        if rule == "old" and len(finished) >= k or not live:
            break
    else:
        finished += [(s / length_penalty_gnmt(max_len, alpha), seq[1:]) for seq, s in live]
    return max(finished, key=lambda f: f[0])[1]  # the first of equal scores, as beam_search


def strip(row):
    row = row.tolist()
    return row[: row.index(EOS) + 1] if EOS in row else row


def all_sequences(tokens, max_len):
    for n in range(1, max_len + 1):
        for seq in itertools.product(tokens, repeat=n):
            if EOS in seq[:-1] or (n < max_len and seq[-1] != EOS):
                continue
            yield list(seq)


def the_trap():
    """A model where finishing early looks good, and a long hypothesis wins after length normalisation.

    Tokens: PAD 0, BOS 1, EOS 2, A 3, B 4. First token: EOS 0.4, A 0.35, B 0.25. After A: EOS 0.55,
    B 0.45. After B: B (almost surely) until position 6, then EOS. With k = 2 and alpha = 1 the old
    search finishes [EOS] and [A, EOS] and stops; the best is [B, B, B, B, B, B, EOS]:
    log 0.25 / lp(7) = -1.386 / 2 = -0.69 against log 0.4 / lp(1) = -0.92.
    """
    never = -1e4
    table = torch.full((8, 5, 5), never, dtype=torch.float64)
    table[0, BOS, [EOS, 3, 4]] = torch.tensor([0.4, 0.35, 0.25]).log().double()
    table[1:, 3, [EOS, 4]] = torch.tensor([0.55, 0.45]).log().double()
    table[1:6, 4, 4] = 0.0  # B -> B, then B -> EOS at position 6 (the 7th token)
    table[6:, 4, EOS] = 0.0
    table[:, EOS, EOS] = 0.0  # after EOS (never used: finished hypotheses are not extended)
    return TableModel(table)


def test_old_search_returns_a_worse_hypothesis_than_the_new_one():
    model, src, k, max_len, alpha = the_trap(), torch.tensor([[5, 6]]), 2, 8, 1.0
    old = search(model, k, max_len, alpha, "old")
    new = strip(beam_search(model, src, BOS, EOS, max_len, beam_size=k, length_penalty=alpha)[0])
    # Exhaustive over the tokens the model can emit (PAD and BOS have log-probability about -1e4).
    best = max(all_sequences([EOS, 3, 4], max_len), key=lambda s: score(model, s, alpha, max_len))
    assert old == [EOS]
    assert new == best == [4, 4, 4, 4, 4, 4, EOS]
    # ch08 quotes these two scores.
    assert round(score(model, old, alpha, max_len), 2) == -0.92 and round(score(model, new, alpha, max_len), 2) == -0.69
    # The same hypothesis with alpha = 0: raw log-probability prefers [EOS], and both searches find it.
    assert strip(beam_search(model, src, BOS, EOS, max_len, beam_size=k, length_penalty=0.0)[0]) == [EOS]


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0, 2.0, -0.5])
def test_early_stop_is_exact(alpha):
    """Stopping when no live hypothesis can beat the best finished one returns what running to max_len does."""
    differs_from_old = 0
    for seed, k in itertools.product(range(25), (1, 2, 3)):
        model = TableModel(random_table(seed))
        got = strip(beam_search(model, torch.tensor([[5]]), BOS, EOS, 7, beam_size=k, length_penalty=alpha)[0])
        assert got == search(model, k, 7, alpha, "full"), (seed, k)
        differs_from_old += got != search(model, k, 7, alpha, "old")
    if alpha > 0:
        assert differs_from_old > 0, "these tables never separate the old search from the new one"


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_beam_size_one_is_greedy_or_better(alpha):
    """k = 1 with alpha = 0 is greedy search; with alpha > 0 it may go on past greedy's EOS, never worse."""
    for seed in range(25):
        model = TableModel(random_table(seed))
        src = torch.tensor([[5]])
        greedy = strip(greedy_decode(model, src, BOS, EOS, 7)[0])
        beam = strip(beam_search(model, src, BOS, EOS, 7, beam_size=1, length_penalty=alpha)[0])
        if alpha == 0:
            assert beam == greedy, seed
        else:
            assert score(model, beam, alpha, 7) >= score(model, greedy, alpha, 7), seed


def transformer(seed, vocab=5):
    torch.manual_seed(seed)
    cfg = TransformerConfig(src_vocab_size=7, tgt_vocab_size=vocab, d_model=16, num_heads=4, num_encoder_layers=1,
                            num_decoder_layers=2, d_ff=24, dropout=0.0, max_len=32)
    return Transformer(cfg).double().eval()


@pytest.mark.parametrize("alpha", [0.6, 1.0])
def test_wide_beam_finds_the_exact_best_sequence_with_length_penalty(alpha):
    """With 200 beams nothing is pruned (vocab 5, max_len 3), so the search must return the optimum."""
    for seed in range(5):
        model = transformer(seed)
        src = torch.randint(3, 7, (1, 4), generator=torch.Generator().manual_seed(seed))
        memory = model.encode(src)

        def sequence_score(seq):
            tgt = torch.tensor([[BOS] + seq[:-1]])
            logp = torch.log_softmax(model.decode(tgt, memory, src).double(), -1)[0]
            return sum(logp[i, t].item() for i, t in enumerate(seq)) / length_penalty_gnmt(len(seq), alpha)

        with torch.no_grad():
            best = max(all_sequences(range(5), 3), key=sequence_score)
            found = strip(beam_search(model, src, BOS, EOS, 3, beam_size=200, length_penalty=alpha)[0])
        assert found == best, (seed, found, best)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_same_with_and_without_cache(alpha):
    model = transformer(0, vocab=9)
    src = torch.randint(3, 7, (3, 6), generator=torch.Generator().manual_seed(1))
    src[1, 3:] = PAD
    for k in (1, 2, 4):
        assert torch.equal(beam_search(model, src, BOS, EOS, 9, beam_size=k, length_penalty=alpha, use_cache=True),
                           beam_search(model, src, BOS, EOS, 9, beam_size=k, length_penalty=alpha)), k
