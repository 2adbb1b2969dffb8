"""Multi-head attention: h attention heads run side by side on d_model / h dimensions each."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import check_mask, scaled_dot_product_attention
from .positional import apply_rotary


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_o, head_i = Attention(Q W_q^i, K W_k^i, V W_v^i).

    Batch-first: query (B, Lq, d_model), key and value (B, Lk, d_model).
    mask: boolean, broadcastable to (B, num_heads, Lq, Lk), True = may attend.
    Returns output (B, Lq, d_model) and per-head weights (B, num_heads, Lq, Lk);
    with ``use_sdpa=True`` the fused ``F.scaled_dot_product_attention`` computes the
    same output faster and the weights are not materialised (``None``).
    ``rotary=True`` rotates queries and keys by their positions (RoPE) before scoring.
    ``cache`` (a :class:`KVCache`, for incremental decoding in chapter 8) puts the keys and values of
    earlier calls before this call's; mask then covers all of them. Problem sets never pass it.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 use_sdpa: bool = False, rotary: bool = False):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(
                f"d_model ({d_model}) must be divisible by num_heads ({num_heads}): each head gets "
                f"d_model / num_heads dimensions; pick num_heads among the divisors of {d_model}"
            )
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.dropout = dropout
        self.use_sdpa = use_sdpa
        self.rotary = rotary
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        return x.view(B, L, self.num_heads, self.d_head).transpose(1, 2)  # (B, h, L, d_head)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, _, L, _ = x.shape
        return x.transpose(1, 2).contiguous().view(B, L, self.d_model)  # (B, L, d_model)

    def forward(self, query, key, value, mask=None, cache=None):
        check_mask(mask)
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.dim() != 3 or t.size(-1) != self.d_model:
                raise ValueError(
                    f"{name} must have shape (B, L, d_model={self.d_model}), got {tuple(t.shape)}; "
                    "inputs are batch-first"
                )
        q = self.split_heads(self.w_q(query))  # (B, h, Lq, d_head)
        k = self.split_heads(self.w_k(key))  # (B, h, Lk, d_head)
        v = self.split_heads(self.w_v(value))  # (B, h, Lk, d_head)
        if self.rotary:  # new positions start after the cached ones
            start = 0 if cache is None else cache.length
            q = apply_rotary(q, torch.arange(start, start + q.size(-2), device=q.device))
            k = apply_rotary(k, torch.arange(start, start + k.size(-2), device=k.device))
        if cache is not None:
            k, v = cache.update(k, v)  # (B, h, cached + Lk, d_head)
        p = self.dropout if self.training else 0.0
        if self.use_sdpa:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, h, Lq, d_head)
            if mask is not None:  # a query with no allowed key: zeros, as in the explicit path
                out = out.masked_fill(~mask.any(-1, keepdim=True), 0.0)
            weights = None
        else:
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p=p)  # (B, h, Lq, d_head)
        return self.w_o(self.merge_heads(out)), weights



class PackedSelfAttention(nn.Module):
    """Self-attention with the three input projections packed into one ``nn.Linear(d_model, 3 * d_model)``.

    ``w_qkv.weight`` stacks the rows of W_q, W_k and W_v, in that order (rows 0 .. d_model - 1 make the
    queries of all heads), the layout of ``nn.MultiheadAttention.in_proj_weight`` and of nanoGPT's
    ``c_attn``; inside each third, head i is the contiguous slice i * d_head .. (i + 1) * d_head - 1,
    as in :class:`MultiHeadAttention`. One matrix product instead of three; it only serves
    self-attention, where query, key and value are the same sequence.
    x (B, L, d_model), mask boolean broadcastable to (B, num_heads, L, L), True = may attend.
    Returns output (B, L, d_model) and per-head weights (B, num_heads, L, L).
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = True):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.w_qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        B, L, _ = x.shape
        q, k, v = self.w_qkv(x).split(self.d_model, dim=-1)  # 3 x (B, L, d_model): queries, keys, values
        q, k, v = (t.view(B, L, self.num_heads, self.d_head).transpose(1, 2) for t in (q, k, v))  # (B, h, L, d_head)
        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h, L, d_head), (B, h, L, L)
        return self.w_o(out.transpose(1, 2).reshape(B, L, self.d_model)), weights


class KVCache:
    """The keys and values one attention module has computed so far: a KV cache for incremental decoding.

    ``MultiHeadAttention.forward(..., cache=c)`` passes its new keys and values (B, h, L, d_head)
    through :meth:`update`, which appends them and returns everything cached. Decoding step t then
    projects one token instead of the t-token prefix. A cross-attention cache is filled with the
    encoder's memory at the first step and is fed no new keys after it.
    """

    def __init__(self):
        self.k: torch.Tensor | None = None  # (B, h, length, d_head)
        self.v: torch.Tensor | None = None  # (B, h, length, d_head)

    @property
    def length(self) -> int:
        """Positions cached so far: the position of the next key (rotary embeddings need it)."""
        return 0 if self.k is None else self.k.size(-2)

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append k, v (B, h, L, d_head) and return all cached keys and values (B, h, length + L, d_head)."""
        if self.k is not None:
            k = torch.cat([self.k, k], dim=-2)  # (B, h, length + L, d_head)
            v = torch.cat([self.v, v], dim=-2)
        self.k, self.v = k, v
        return k, v

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows ``index`` (B',) in that order: beam search follows the beams it keeps."""
        if self.k is not None:
            self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)


class SharedKVHeads:
    """What :class:`GroupedQueryAttention` hands to ``MultiHeadAttention.forward`` as its ``cache``.

    The base class's forward passes the keys and values of every call through ``cache.update`` just
    before the attention: the one place where grouped-query attention differs from multi-head
    attention. ``update`` keeps ``num_kv_heads`` heads in the real :class:`KVCache` (if there is one)
    and returns each key/value head repeated for its group of ``group`` consecutive query heads.
    """

    def __init__(self, cache: KVCache | None, group: int):
        self.cache = cache
        self.group = group

    @property
    def length(self) -> int:
        return 0 if self.cache is None else self.cache.length

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """k, v (B, h_kv, L, d_head) -> all keys and values so far, (B, h_kv * group, length + L, d_head)."""
        if self.cache is not None:
            k, v = self.cache.update(k, v)  # the cache keeps h_kv heads: (B, h_kv, length + L, d_head)
        # query head i uses key/value head i // group: each kv head is repeated in place, not the list tiled
        return k.repeat_interleave(self.group, dim=1), v.repeat_interleave(self.group, dim=1)


class GroupedQueryAttention(MultiHeadAttention):
    """Grouped-query attention (Ainslie et al., 2023): ``num_heads`` query heads share ``num_kv_heads``
    key/value heads, each shared by a group of ``num_heads // num_kv_heads`` consecutive query heads.

    ``num_kv_heads == num_heads`` is multi-head attention (the same computation as the base class);
    ``num_kv_heads == 1`` is multi-query attention (Shazeer, 2019). Keys and values are projected to
    ``num_kv_heads * d_head`` dimensions only, so a :class:`KVCache` holds ``num_heads / num_kv_heads``
    times fewer values per token; each key/value head is repeated for its group just before the
    scores (``repeat_interleave``, as ``F.scaled_dot_product_attention(..., enable_gqa=True)`` does).
    Same inputs, outputs and mask convention as :class:`MultiHeadAttention`, whose forward it runs.
    """

    def __init__(self, d_model: int, num_heads: int, num_kv_heads: int, dropout: float = 0.0, bias: bool = True,
                 use_sdpa: bool = False, rotary: bool = False):
        super().__init__(d_model, num_heads, dropout=dropout, bias=bias, use_sdpa=use_sdpa, rotary=rotary)
        if num_kv_heads < 1 or num_heads % num_kv_heads != 0:
            raise ValueError(
                f"num_heads ({num_heads}) must be a multiple of num_kv_heads ({num_kv_heads}): each key/value "
                f"head serves a whole group of query heads; pick num_kv_heads among the divisors of {num_heads}"
            )
        self.num_kv_heads = num_kv_heads
        self.w_k = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)
        self.w_v = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, n * d_head) -> (B, n, L, d_head): n = num_heads for queries, num_kv_heads for keys and values."""
        B, L, features = x.shape
        return x.view(B, L, features // self.d_head, self.d_head).transpose(1, 2)

    def forward(self, query, key, value, mask=None, cache=None):
        group = self.num_heads // self.num_kv_heads
        return super().forward(query, key, value, mask, cache=SharedKVHeads(cache, group))
