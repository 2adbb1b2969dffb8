"""Sampling the next token (chapter 9): temperature, top-k and top-p, with replayable randomness.

The randomness is an argument: one uniform number ``noise`` in [0, 1) per row, turned into a token
by inverse-CDF sampling over the vocabulary in index order. The same logits and the same noise give
the same token, so a grader (or a test) can replay a sampler exactly; many draws with fresh noise
give the distribution's frequencies.

The contract, in the order it is applied to each row of logits (..., V); each step works on the
renormalised result of the steps before it:

1. temperature T > 0: probabilities ``softmax(logits / T)`` (T < 1 sharpens, T > 1 flattens);
2. top-k: keep the k most probable tokens; ties at the k-th probability are broken by index (the
   lower index is kept), so exactly k tokens survive;
3. top-p (nucleus): keep the smallest set of most probable tokens whose probability reaches p,
   *including* the token that crosses p (so at least one token is kept); ties again by index;
4. renormalise what is kept, and pick the first index whose cumulative probability exceeds noise.
"""
from __future__ import annotations

import torch


def filter_probabilities(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                         top_p: float | None = None) -> torch.Tensor:
    """The distribution a sampler draws from: steps 1-3 of the module's contract, renormalised. (..., V)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}; for the most probable token use argmax")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    probs = torch.softmax(logits / temperature, dim=-1)  # (..., V)
    # Rank 0 = most probable; a stable sort keeps tied tokens in index order.
    order = torch.sort(probs, dim=-1, descending=True, stable=True).indices  # (..., V)
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(probs.size(-1)).expand_as(order))
    if top_k is not None:
        probs = probs * (rank < top_k)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    if top_p is not None:
        sorted_probs = torch.gather(probs, -1, order)
        before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # the mass of the tokens ranked above
        keep_sorted = before < top_p  # the token that crosses p still has less than p before it
        probs = probs * torch.gather(keep_sorted, -1, rank)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def sample_next(logits: torch.Tensor, noise: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None) -> torch.Tensor:
    """One token per row: logits (..., V), noise (...) uniform in [0, 1) -> token ids (...), long."""
    probs = filter_probabilities(logits, temperature, top_k, top_p)
    cdf = torch.cumsum(probs, dim=-1)  # (..., V), in index order
    token = (cdf <= noise.unsqueeze(-1).to(cdf.dtype)).sum(dim=-1)  # the first index whose cdf exceeds noise
    # Round-off can leave the last cdf just below 1: never step past the last kept token.
    last_kept = probs.size(-1) - 1 - torch.argmax(torch.flip(probs > 0, dims=[-1]).int(), dim=-1)
    return torch.minimum(token, last_kept)
