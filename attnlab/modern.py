"""The modern block (chapter 12): RMSNorm, SwiGLU, ALiBi, T5's relative bias and a LLaMA-style decoder layer.

What changed between the 2017 block (``transformer.EncoderLayer``) and the blocks of current
decoder-only models, each a small module here:

- **RMSNorm** (Zhang and Sennrich, 2019): LayerNorm without the mean subtraction and the bias,
  ``x / sqrt(mean(x^2) + eps) * weight``.
- **SwiGLU** (Shazeer, 2020): a gated feed-forward network ``W_2 (silu(W_1 x) * W_3 x)`` with no
  biases; three matrices instead of two, so ``d_ff`` is usually about 8/3 d_model for the same size.
- **ALiBi** (Press et al., 2022): no position embedding at all; each head adds ``-slope * distance``
  to its scores, with slopes in a geometric sequence.
- **T5's relative position bias** (Raffel et al., 2020): each head adds a learned scalar per bucket of
  relative distance to its scores; distances below a threshold get a bucket each, longer ones share
  log-spaced buckets, and everything from ``max_distance`` on shares the last one.
- Rotary positions, grouped-query attention, no biases and pre-norm: :class:`ModernDecoderLayer`.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .multihead import GroupedQueryAttention, KVCache, SharedKVHeads


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


def relative_position_bucket(relative_position: torch.Tensor, bidirectional: bool = True, num_buckets: int = 32,
                             max_distance: int = 128) -> torch.Tensor:
    """T5's bucket of each relative position ``key_position - query_position`` (long tensor, any shape).

    Bidirectional (an encoder): half the buckets are for keys before the query, half (offset by
    ``num_buckets // 2``) for keys after it. Causal (a decoder): only distances into the past count;
    keys after the query all get bucket 0 (the causal mask removes them). Of the n buckets left
    for one direction, distances 0 .. n/2 - 1 get one bucket each; a distance d >= n/2 gets bucket
    ``n/2 + floor(log(d / (n/2)) / log(max_distance / (n/2)) * (n - n/2))``, at most n - 1: log-spaced
    buckets, and every distance from ``max_distance`` on shares the last. Computed in float32 as in
    the T5 code (Mesh TensorFlow) and Hugging Face's ``T5Attention._relative_position_bucket``.
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets  # keys after the query
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)  # how far into the past; future keys -> 0
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # distance.clamp(min=1): log(0) never reaches the result (is_small picks those), but keeps it finite
    log_ratio = torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    if_large = (max_exact + (log_ratio * (num_buckets - max_exact)).long()).clamp(max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, if_large)


class RelativePositionBias(nn.Module):
    """T5's relative position bias (Raffel et al., 2020): a learned scalar per bucket and head.

    ``forward(length_q, length_k)`` returns the bias added to the scores, (num_heads, Lq, Lk):
    ``bias[h, i, j] = embedding.weight[relative_position_bucket(j - i), h]``, with the queries the last
    Lq of the Lk positions (as :func:`alibi_bias`). T5 computes it once, in the first layer, and every
    layer adds the same bias; it has no other position information. ``bidirectional=False`` for a
    decoder. The scalars start at 0: an untrained model has no position information at all.
    """

    def __init__(self, num_heads: int, num_buckets: int = 32, max_distance: int = 128, bidirectional: bool = True):
        super().__init__()
        self.num_heads, self.num_buckets = num_heads, num_buckets
        self.max_distance, self.bidirectional = max_distance, bidirectional
        self.embedding = nn.Embedding(num_buckets, num_heads)
        nn.init.zeros_(self.embedding.weight)

    def forward(self, length_q: int, length_k: int | None = None) -> torch.Tensor:
        length_k = length_q if length_k is None else length_k
        device = self.embedding.weight.device
        i = torch.arange(length_k - length_q, length_k, device=device).unsqueeze(1)  # query positions (Lq, 1)
        j = torch.arange(length_k, device=device).unsqueeze(0)  # key positions (1, Lk)
        buckets = relative_position_bucket(j - i, self.bidirectional, self.num_buckets, self.max_distance)  # (Lq, Lk)
        return self.embedding(buckets).permute(2, 0, 1)  # (Lq, Lk, h) -> (h, Lq, Lk)


def attention_with_score_bias(attn: GroupedQueryAttention, x: torch.Tensor, mask: torch.Tensor | None,
                              bias: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
    """Self-attention of ``attn`` over x (B, L, d_model) with a float ``bias`` broadcastable to
    (B, num_heads, L, cached + L) added to the scaled scores (ALiBi, T5's relative bias); returns (B, L, d_model).

    Beside the module, not an argument of its forward: ``MultiHeadAttention.forward`` is the graded answer of
    ps04 and ``GroupedQueryAttention``'s of ps12, and a bias would become part of both. It uses the module's own
    projections, head split and key/value sharing, and PyTorch's fused attention, which adds a float
    ``attn_mask`` to the scores. A score bias replaces rotary positions, so ``attn.rotary`` must be off.
    """
    if attn.rotary:
        raise ValueError("a score bias is a position scheme of its own: build the attention with rotary=False")
    shared = SharedKVHeads(cache, attn.num_heads // attn.num_kv_heads)
    q = attn.split_heads(attn.w_q(x))  # (B, h, L, d_head)
    k, v = shared.update(attn.split_heads(attn.w_k(x)), attn.split_heads(attn.w_v(x)))  # (B, h, Lk, d_head)
    scores_bias = bias.to(q.dtype)
    if mask is not None:  # masked keys get the lowest float; a query with no allowed key gets zeros below
        scores_bias = torch.where(mask, scores_bias, torch.finfo(q.dtype).min)
    p = attn.dropout if attn.training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=scores_bias, dropout_p=p)  # (B, h, L, d_head)
    if mask is not None:
        out = out.masked_fill(~mask.any(-1, keepdim=True), 0.0)
    return attn.w_o(attn.merge_heads(out))


class ModernDecoderLayer(nn.Module):
    """A LLaMA-style layer: pre-norm with RMSNorm, grouped-query self-attention with rotary
    positions and no biases, then a SwiGLU feed-forward network.

        x = x + Attention(RMSNorm(x));  x = x + SwiGLU(RMSNorm(x))

    x (B, L, d_model); mask boolean, broadcastable to (B, num_heads, L, L) (the causal mask, for a decoder).
    To compare position schemes: ``rotary=False`` leaves the queries and keys unrotated, and ``bias``
    (float, broadcastable to (B, num_heads, L, L): :func:`alibi_bias`, :class:`RelativePositionBias`)
    is added to the attention scores.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, num_kv_heads: int | None = None,
                 dropout: float = 0.0, eps: float = 1e-6, rotary: bool = True):
        super().__init__()
        self.attn_norm = RMSNorm(d_model, eps)
        self.attn = GroupedQueryAttention(d_model, num_heads, num_kv_heads or num_heads, dropout=dropout,
                                          bias=False, rotary=rotary)
        self.ffn_norm = RMSNorm(d_model, eps)
        self.ffn = SwiGLU(d_model, d_ff, dropout)
        self.dropout = nn.Dropout(dropout)

    @property
    def self_attn(self) -> GroupedQueryAttention:
        """The attention under EncoderLayer's name for it: the KV-cached feed of attnlab.decoder_only finds it so."""
        return self.attn

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, cache=None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        h = self.attn_norm(x)
        if bias is None:
            attended = self.attn(h, h, h, mask, cache=cache)[0]
        else:
            attended = attention_with_score_bias(self.attn, h, mask, bias, cache)
        x = x + self.dropout(attended)
        return x + self.dropout(self.ffn(self.ffn_norm(x)))
