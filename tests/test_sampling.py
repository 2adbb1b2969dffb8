"""The sampler's contract (attnlab/sampling.py): exact on given noise, and the right frequencies on many draws."""
from __future__ import annotations

import pytest
import torch

from attnlab.sampling import filter_probabilities, sample_next


def test_inverse_cdf_on_given_noise_in_index_order():
    logits = torch.log(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64))
    for u, expected in ((0.0, 0), (0.19, 0), (0.21, 1), (0.69, 1), (0.71, 2), (0.999, 2)):
        assert sample_next(logits, torch.tensor(u, dtype=torch.float64)).item() == expected


def test_temperature_divides_the_logits_before_the_softmax():
    logits = torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64)
    for t in (0.5, 1.0, 3.0):
        torch.testing.assert_close(filter_probabilities(logits, temperature=t), torch.softmax(logits / t, -1))
    with pytest.raises(ValueError, match="temperature must be positive"):
        filter_probabilities(logits, temperature=0.0)


def test_top_k_keeps_k_tokens_ties_by_index():
    probs = filter_probabilities(torch.tensor([1.0, 3.0, 1.0, 1.0, 0.0]), top_k=2)
    assert (probs > 0).tolist() == [True, True, False, False, False]  # the tie at 1.0: index 0 wins
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("p, kept", [(0.5, [True, False, False]), (0.6, [True, True, False]),
                                     (0.8, [True, True, False]), (0.81, [True, True, True]), (1.0, [True, True, True])])
def test_top_p_keeps_the_smallest_set_reaching_p_including_the_crossing_token(p, kept):
    logits = torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
    probs = filter_probabilities(logits, top_p=p)
    assert (probs > 0).tolist() == kept
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_many_draws_give_the_filtered_frequencies():
    torch.manual_seed(0)
    logits = torch.tensor([1.0, 0.5, 0.2, -0.3, -1.0, 0.9], dtype=torch.float64)
    n = 40_000
    for options in ({}, {"temperature": 0.7}, {"top_k": 3}, {"top_p": 0.7}, {"top_k": 4, "top_p": 0.9}):
        tokens = sample_next(logits.expand(n, -1), torch.rand(n, dtype=torch.float64), **options)
        freq = torch.bincount(tokens, minlength=6).double() / n
        probs = filter_probabilities(logits, **options)
        sigma = (probs * (1 - probs) / n).sqrt()
        assert ((freq - probs).abs() <= 5 * sigma + 1e-12).all(), (options, freq, probs)


def test_sampling_is_batched_and_never_picks_a_removed_token():
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(1))
    noise = torch.linspace(0, 0.999999, 64)
    tokens = sample_next(logits, noise, top_k=2)
    top2 = logits.topk(2, dim=-1).indices
    assert ((tokens[:, None] == top2).any(-1)).all()
