"""The modern block (chapter 12): RMSNorm, SwiGLU, ALiBi and a LLaMA-style decoder layer.

What changed between the 2017 block (``transformer.EncoderLayer``) and the blocks of current
decoder-only models, each a small module here:

- **RMSNorm** (Zhang and Sennrich, 2019): LayerNorm without the mean subtraction and the bias,
  ``x / sqrt(mean(x^2) + eps) * weight``.
- **SwiGLU** (Shazeer, 2020): a gated feed-forward network ``W_2 (silu(W_1 x) * W_3 x)`` with no
  biases; three matrices instead of two, so ``d_ff`` is usually about 8/3 d_model for the same size.
- **ALiBi** (Press et al., 2022): no position embedding at all; each head adds ``-slope * distance``
  to its scores, with slopes in a geometric sequence.
- Rotary positions, grouped-query attention, no biases and pre-norm: :class:`ModernDecoderLayer`.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .multihead import GroupedQueryAttention


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the last axis: ``x * rsqrt(mean(x^2) + eps) * weight``.

    Equal to ``torch.nn.RMSNorm(d_model, eps=eps)``. No mean is subtracted and there is no bias:
    the re-centring of LayerNorm turned out not to be needed, and dropping it saves a reduction.
    """

    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms_inv = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., 1)
        return x * rms_inv * self.weight


class SwiGLU(nn.Module):
    """The gated feed-forward network of LLaMA and PaLM: ``w_2(silu(w_1(x)) * w_3(x))``, no biases.

    ``w_1`` is the gate (through the SiLU), ``w_3`` the value it gates; (B, L, d_model) -> (B, L, d_model).
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff, bias=False)
        self.w_3 = nn.Linear(d_model, d_ff, bias=False)
        self.w_2 = nn.Linear(d_ff, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.dropout(F.silu(self.w_1(x)) * self.w_3(x)))


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """The ALiBi slope of each head, (num_heads,), float64.

    For a power of two n: 2^(-8/n), 2^(-16/n), ..., 2^(-8) (a geometric sequence). Otherwise the
    slopes of the largest power of two below n, followed by every other slope of the next power of
    two, as in the authors' code (Press et al., 2022).
    """
    if num_heads < 1:
        raise ValueError(f"num_heads must be positive, got {num_heads}")

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(num_heads).is_integer():
        slopes = power_of_two(num_heads)
    else:
        closest = 2 ** math.floor(math.log2(num_heads))
        slopes = power_of_two(closest) + power_of_two(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float64)


def alibi_bias(num_heads: int, length_q: int, length_k: int | None = None, causal: bool = True,
               device=None, dtype=torch.float32) -> torch.Tensor:
    """The ALiBi bias added to the scores, (num_heads, Lq, Lk): ``-slope_h * (i - j)``.

    Causal (a decoder): keys j <= i get ``-slope * (i - j)``; later keys are left at 0 because the
    causal mask removes them. Not causal (an encoder): ``-slope * |i - j|``. Queries are the last Lq
    positions of the Lk keys (as when decoding with a cache).
    """
    length_k = length_q if length_k is None else length_k
    i = torch.arange(length_k - length_q, length_k, device=device).unsqueeze(1)
    j = torch.arange(length_k, device=device).unsqueeze(0)
    distance = (i - j).clamp(min=0) if causal else (i - j).abs()  # (Lq, Lk)
    slopes = alibi_slopes(num_heads).to(device=device, dtype=dtype)
    return -slopes.view(-1, 1, 1) * distance.to(dtype)


class ModernDecoderLayer(nn.Module):
    """A LLaMA-style layer: pre-norm with RMSNorm, grouped-query self-attention with rotary
    positions and no biases, then a SwiGLU feed-forward network.

        x = x + Attention(RMSNorm(x));  x = x + SwiGLU(RMSNorm(x))

    x (B, L, d_model); mask boolean, broadcastable to (B, num_heads, L, L) (the causal mask, for a decoder).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, num_kv_heads: int | None = None,
                 dropout: float = 0.0, eps: float = 1e-6):
        super().__init__()
        self.attn_norm = RMSNorm(d_model, eps)
        self.attn = GroupedQueryAttention(d_model, num_heads, num_kv_heads or num_heads, dropout=dropout,
                                          bias=False, rotary=True)
        self.ffn_norm = RMSNorm(d_model, eps)
        self.ffn = SwiGLU(d_model, d_ff, dropout)
        self.dropout = nn.Dropout(dropout)

    @property
    def self_attn(self) -> GroupedQueryAttention:
        """The attention under EncoderLayer's name for it: the KV-cached feed of attnlab.decoder_only finds it so."""
        return self.attn

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, cache=None) -> torch.Tensor:
        h = self.attn_norm(x)
        x = x + self.dropout(self.attn(h, h, h, mask, cache=cache)[0])
        return x + self.dropout(self.ffn(self.ffn_norm(x)))
