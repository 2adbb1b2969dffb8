"""Scaled dot-product attention, written out so that every step can be read.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + mask) V

Mask convention (the same as ``torch.nn.functional.scaled_dot_product_attention``):
a boolean mask where **True means "may attend"**. A query row with no allowed key
gets zero weights and a zero output instead of NaN.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def check_mask(mask: torch.Tensor | None) -> None:
    """Raise a clear error for a mask that is not boolean."""
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(
            f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}; "
            "convert it with `mask.bool()` or build it with a comparison such as `tokens != pad_id`"
        )


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis that gives weight 0 to masked keys.

    A row whose keys are all masked gets all-zero weights (not NaN).
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    # The most negative finite number, not -inf: a fully masked row then stays finite.
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    return weights.masked_fill(~mask, 0.0)


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(output, weights)`` of scaled dot-product attention.

    query (..., Lq, d_k), key (..., Lk, d_k), value (..., Lk, d_v),
    mask boolean broadcastable to (..., Lq, Lk), True = may attend.
    output (..., Lq, d_v), weights (..., Lq, Lk).
    """
    check_mask(mask)
    d_k = query.size(-1)
    if key.size(-1) != d_k:
        raise ValueError(f"query and key must have the same last dimension d_k, got {d_k} and {key.size(-1)}")
    if key.size(-2) != value.size(-2):
        raise ValueError(
            f"key and value must have the same length Lk, got {key.size(-2)} and {value.size(-2)}"
        )
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)  # (..., Lq, Lk)
    weights = masked_softmax(scores, mask)  # (..., Lq, Lk)
    attended = F.dropout(weights, dropout_p) if dropout_p > 0.0 else weights
    output = attended @ value  # (..., Lq, d_v)
    return output, weights


def general_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    weight: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention with Luong's "general" score, score(q, k) = q^T W k (Luong et al., 2015), not scaled.

    query (..., Lq, d_q), key (..., Lk, d_k), value (..., Lk, d_v), weight W (d_q, d_k): queries and
    keys may have different sizes. mask boolean broadcastable to (..., Lq, Lk), True = may attend.
    Returns (output (..., Lq, d_v), weights (..., Lq, Lk)).
    """
    check_mask(mask)
    if weight.shape != (query.size(-1), key.size(-1)):
        raise ValueError(f"weight must have shape (d_q, d_k) = {(query.size(-1), key.size(-1))}, got {tuple(weight.shape)}")
    scores = query @ weight @ key.transpose(-2, -1)  # (..., Lq, Lk); W is learned, so no 1/sqrt(d_k)
    weights = masked_softmax(scores, mask)  # (..., Lq, Lk)
    return weights @ value, weights  # (..., Lq, d_v), (..., Lq, Lk)


class SelfAttention(nn.Module):
    """Single-head self-attention: Q, K and V are three projections of the same sequence x.

    x (B, L, d_model) -> output (B, L, d_v) and weights (B, L, L); ``d_v`` defaults to ``d_k``.
    Multi-head attention (``MultiHeadAttention``) runs several of these side by side.
    """

    def __init__(self, d_model: int, d_k: int, d_v: int | None = None):
        """Three bias-free projections w_q, w_k (d_model -> d_k) and w_v (d_model -> d_v, default d_k)."""
        super().__init__()
        self.w_q = nn.Linear(d_model, d_k, bias=False)
        self.w_k = nn.Linear(d_model, d_k, bias=False)
        self.w_v = nn.Linear(d_model, d_k if d_v is None else d_v, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """x (B, L, d_model), mask boolean broadcastable to (B, L, L) -> ((B, L, d_v), (B, L, L))."""
        q, k, v = self.w_q(x), self.w_k(x), self.w_v(x)  # (B, L, d_k), (B, L, d_k), (B, L, d_v)
        return scaled_dot_product_attention(q, k, v, mask)  # (B, L, d_v), (B, L, L)


class CrossAttention(SelfAttention):
    """Single-head cross-attention: the parameters of SelfAttention, queries from x, keys and values from memory.

    x (B, Lq, d_model), memory (B, Lk, d_model), mask boolean broadcastable to (B, Lq, Lk)
    -> output (B, Lq, d_v), weights (B, Lq, Lk). ``CrossAttention(x, x)`` is ``SelfAttention(x)``.
    """

    def forward(self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None):
        """x (B, Lq, d_model), memory (B, Lk, d_model), mask -> ((B, Lq, d_v), (B, Lq, Lk))."""
        q, k, v = self.w_q(x), self.w_k(memory), self.w_v(memory)  # (B, Lq, d_k), (B, Lk, d_k), (B, Lk, d_v)
        return scaled_dot_product_attention(q, k, v, mask)  # (B, Lq, d_v), (B, Lq, Lk)


class AdditiveAttention(nn.Module):
    """Bahdanau (additive) attention: score(q, k) = v^T tanh(W_q q + W_k k)."""

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int):
        super().__init__()
        self.w_q = nn.Linear(query_dim, hidden_dim, bias=False)
        self.w_k = nn.Linear(key_dim, hidden_dim, bias=False)
        self.v = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, query, key, value, mask=None):
        """query (B, Lq, dq), key (B, Lk, dk), value (B, Lk, dv) -> ((B, Lq, dv), (B, Lq, Lk))."""
        check_mask(mask)
        features = torch.tanh(self.w_q(query).unsqueeze(2) + self.w_k(key).unsqueeze(1))  # (B, Lq, Lk, H)
        scores = self.v(features).squeeze(-1)  # (B, Lq, Lk)
        weights = masked_softmax(scores, mask)
        return weights @ value, weights
