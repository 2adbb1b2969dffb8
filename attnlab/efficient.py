"""Attention at scale, written out (chapter 11): the online softmax, tiled attention, local and linear attention.

Tiled attention computes exactly what ``scaled_dot_product_attention`` computes, with the same
O(Lq·Lk·d) multiply-adds, but never holds the (Lq, Lk) score matrix: it walks over blocks of keys
and keeps, per query, a running maximum m, a running sum s of exponentials and a running weighted
sum of values, rescaling the last two whenever m grows (the *online softmax*). Its extra memory is
O(block_q · block_k) for one tile plus O(Lq · d) for the accumulators. This is the algorithm of
FlashAttention (Dao et al., 2022); a real kernel adds what plain PyTorch cannot: the tiles live in
the GPU's on-chip SRAM, and the backward pass recomputes the tiles instead of storing the weights.

Masks follow the rest of the library: boolean, broadcastable to (..., Lq, Lk), True = may attend;
a query with no allowed key gets a zero output.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .attention import check_mask


def online_softmax_update(
    running_max: torch.Tensor,
    running_sum: torch.Tensor,
    running_out: torch.Tensor,
    scores: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fold one block of keys into the running softmax of each query.

    running_max (..., Lq), running_sum (..., Lq), running_out (..., Lq, d_v): the state so far
    (start from ``-inf``, 0 and 0); scores (..., Lq, Lb) of this block; values (..., Lb, d_v);
    mask (..., Lq, Lb) or None. Returns the new state. After the last block the attention output
    is ``running_out / running_sum[..., None]`` (0 where the sum is 0: no allowed key).
    """
    if mask is not None:  # a masked key scores -inf: it never raises the max, and exp(-inf) = 0 below
        scores = torch.where(mask, scores, float("-inf"))
    new_max = torch.maximum(running_max, scores.amax(dim=-1))  # (..., Lq)
    # Rows with no allowed key so far keep a max of -inf: shift by 0 there, so no inf - inf = NaN.
    shift = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)
    rescale = torch.exp(running_max - shift)  # (..., Lq); exp(-inf) = 0 on the first block
    weights = torch.exp(scores - shift.unsqueeze(-1))  # (..., Lq, Lb); masked keys give exp(-inf) = 0
    new_sum = running_sum * rescale + weights.sum(dim=-1)
    new_out = running_out * rescale.unsqueeze(-1) + weights @ values  # (..., Lq, d_v)
    return new_max, new_sum, new_out


def tiled_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    block_q: int = 64,
    block_k: int = 64,
) -> torch.Tensor:
    """Scaled dot-product attention by tiles (FlashAttention's algorithm in plain PyTorch).

    query (..., Lq, d_k), key (..., Lk, d_k), value (..., Lk, d_v); mask boolean, broadcastable to
    (..., Lq, Lk), True = may attend. Returns the output (..., Lq, d_v), equal to
    ``scaled_dot_product_attention(query, key, value, mask)[0]``; the weights are never formed.
    """
    check_mask(mask)
    if block_q < 1 or block_k < 1:
        raise ValueError(f"block sizes must be positive, got block_q={block_q}, block_k={block_k}")
    d_k, Lq, Lk = query.size(-1), query.size(-2), key.size(-2)
    if key.size(-1) != d_k:
        raise ValueError(f"query and key must have the same last dimension d_k, got {d_k} and {key.size(-1)}")
    if value.size(-2) != Lk:
        raise ValueError(f"key and value must have the same length Lk, got {Lk} and {value.size(-2)}")
    batch = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    if mask is not None:
        mask = mask.expand(*batch, Lq, Lk)  # a view: each tile is a slice of it
    scale = 1.0 / math.sqrt(d_k)
    outputs = []
    for q0 in range(0, Lq, block_q):
        q = query[..., q0:q0 + block_q, :] * scale  # (..., bq, d_k)
        bq = q.size(-2)
        m = torch.full((*batch, bq), float("-inf"), dtype=query.dtype, device=query.device)
        s = torch.zeros((*batch, bq), dtype=query.dtype, device=query.device)
        acc = torch.zeros((*batch, bq, value.size(-1)), dtype=query.dtype, device=query.device)
        for k0 in range(0, Lk, block_k):
            scores = q @ key[..., k0:k0 + block_k, :].transpose(-2, -1)  # (..., bq, bk): one tile
            tile = None if mask is None else mask[..., q0:q0 + block_q, k0:k0 + block_k]
            m, s, acc = online_softmax_update(m, s, acc, scores, value[..., k0:k0 + block_k, :], tile)
        # A query with no allowed key has s = 0 and acc = 0: its output is 0, not 0/0.
        outputs.append(acc / torch.where(s == 0, torch.ones_like(s), s).unsqueeze(-1))
    return torch.cat(outputs, dim=-2)  # (..., Lq, d_v)


def sliding_window_mask(length: int, window: int, causal: bool = True, device=None) -> torch.Tensor:
    """Local attention: query i may attend to key j when 0 <= i - j < window (causal), or when
    |i - j| < window (both sides). Boolean (length, length), True = may attend."""
    if window < 1:
        raise ValueError(f"window must be at least 1 (the token itself), got {window}")
    i = torch.arange(length, device=device).unsqueeze(1)
    j = torch.arange(length, device=device).unsqueeze(0)
    distance = i - j
    if causal:
        return (distance >= 0) & (distance < window)
    return distance.abs() < window


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = elu(x) + 1 > 0, the feature map of Katharopoulos et al. (2020)."""
    return F.elu(x) + 1.0


def linear_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, causal: bool = False,
                     eps: float = 1e-6) -> torch.Tensor:
    """Linear attention: softmax(q k^T) replaced by phi(q) phi(k)^T, so the sums over keys can be
    taken once, (phi(K)^T V) of size (d_k, d_v), instead of per query: O(L d^2) instead of O(L^2 d).

    out_i = phi(q_i)^T S_i / (phi(q_i)^T z_i), with S_i = sum_j phi(k_j) v_j^T and z_i = sum_j phi(k_j)
    over all j (or j <= i when ``causal``, by running sums). query (..., Lq, d_k), key (..., Lk, d_k),
    value (..., Lk, d_v); returns (..., Lq, d_v). It is a different model, not an approximation that
    converges to softmax attention.
    """
    q, k = elu_feature_map(query), elu_feature_map(key)
    if causal:
        if q.size(-2) != k.size(-2):
            raise ValueError("causal linear attention needs as many queries as keys")
        kv = torch.cumsum(k.unsqueeze(-1) * value.unsqueeze(-2), dim=-3)  # (..., L, d_k, d_v): S_i
        z = torch.cumsum(k, dim=-2)  # (..., L, d_k): z_i
        numerator = (q.unsqueeze(-2) @ kv).squeeze(-2)  # (..., L, d_v)
        denominator = (q * z).sum(-1, keepdim=True)
    else:
        kv = k.transpose(-2, -1) @ value  # (..., d_k, d_v)
        numerator = q @ kv  # (..., Lq, d_v)
        denominator = q @ k.sum(dim=-2).unsqueeze(-1)  # (..., Lq, 1)
    return numerator / (denominator + eps)
