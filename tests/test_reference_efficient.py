"""Attention at scale (attnlab/efficient.py, GroupedQueryAttention) against PyTorch's built-ins.

float64 throughout. Tiled attention equals ``F.scaled_dot_product_attention`` (rtol=1e-10,
atol=1e-12: the same sums taken tile by tile, with rescaling, differ by round-off only), with
causal and padding masks, block sizes that do and do not divide the lengths, and a query with no
allowed key (zeros, as the library's attention). Grouped-query attention equals SDPA with
``enable_gqa=True`` on the same projections, equals MultiHeadAttention when every head has its own
keys and values, and caches num_kv_heads heads only.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from attnlab.efficient import (linear_attention, online_softmax_update, sliding_window_mask,
                               tiled_attention)
from attnlab.multihead import GroupedQueryAttention, KVCache

TOL = dict(rtol=1e-10, atol=1e-12)


def qkv(B=2, h=3, Lq=13, Lk=17, d=8, dv=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    make = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return make(B, h, Lq, d), make(B, h, Lk, d), make(B, h, Lk, dv)


@pytest.mark.parametrize("block_q,block_k", [(1, 1), (4, 5), (13, 17), (64, 64), (3, 100)])
def test_tiled_attention_equals_sdpa_without_mask(block_q, block_k):
    q, k, v = qkv()
    torch.testing.assert_close(tiled_attention(q, k, v, block_q=block_q, block_k=block_k),
                               F.scaled_dot_product_attention(q, k, v), **TOL)


@pytest.mark.parametrize("block_q,block_k", [(4, 4), (5, 3), (16, 16)])
def test_tiled_attention_equals_sdpa_with_causal_and_padding_masks(block_q, block_k):
    q, k, v = qkv(Lq=16, Lk=16)
    lengths = torch.tensor([16, 9])
    padding = (torch.arange(16) < lengths[:, None])[:, None, None, :]  # (B, 1, 1, Lk)
    for mask in (causal_mask(16), padding, causal_mask(16) & padding):
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        torch.testing.assert_close(tiled_attention(q, k, v, mask, block_q, block_k), expected, **TOL)


def test_a_query_with_no_allowed_key_gets_zeros_as_in_the_library():
    q, k, v = qkv(Lq=6, Lk=10)
    mask = torch.ones(6, 10, dtype=torch.bool)
    mask[2] = False  # query 2 may attend to nothing
    mask[4, :7] = False  # query 4 only to the last tile's keys
    out = tiled_attention(q, k, v, mask, block_q=2, block_k=4)
    assert torch.isfinite(out).all()
    assert out[..., 2, :].abs().max() == 0
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v, mask)[0], **TOL)


def test_online_softmax_over_blocks_is_the_softmax():
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(4, 23, generator=g, dtype=torch.float64) * 30  # large: the running max matters
    values = torch.eye(23, dtype=torch.float64)  # the output is then the weights themselves
    m, s, acc = torch.full((4,), float("-inf"), dtype=torch.float64), torch.zeros(4, dtype=torch.float64), \
        torch.zeros(4, 23, dtype=torch.float64)
    for start in range(0, 23, 5):
        m, s, acc = online_softmax_update(m, s, acc, scores[:, start:start + 5], values[start:start + 5])
    torch.testing.assert_close(acc / s[:, None], scores.softmax(-1), **TOL)
    torch.testing.assert_close(m, scores.amax(-1), rtol=0, atol=0)


def test_tiled_attention_never_forms_the_score_matrix():
    """Its largest allocation is a tile or an accumulator, O(L * block), never the O(L^2) matrix."""
    from torch.profiler import ProfilerActivity, profile

    q, k, v = qkv(B=1, h=1, Lq=512, Lk=512, d=16, dv=16)

    def largest_allocation(fn) -> int:
        with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        return max(e.self_cpu_memory_usage for e in prof.events())

    one_matrix = 512 * 512 * 8  # float64 (L, L)
    assert largest_allocation(lambda: scaled_dot_product_attention(q, k, v)) >= one_matrix
    tiled = largest_allocation(lambda: tiled_attention(q, k, v, block_q=64, block_k=64))
    assert tiled <= 512 * 16 * 8, f"tiled attention allocated {tiled} bytes at once, more than its (L, d) output"


def test_sliding_window_mask():
    mask = sliding_window_mask(6, 3)
    expected = torch.tensor([[abs(i - j) < 3 and j <= i for j in range(6)] for i in range(6)])
    assert torch.equal(mask, expected)
    assert torch.equal(sliding_window_mask(6, 6), causal_mask(6))
    both = sliding_window_mask(6, 2, causal=False)
    assert torch.equal(both, torch.tensor([[abs(i - j) < 2 for j in range(6)] for i in range(6)]))
    with pytest.raises(ValueError, match="window must be at least 1"):
        sliding_window_mask(4, 0)


def test_linear_attention_is_its_quadratic_formula():
    q, k, v = qkv(Lq=9, Lk=9)
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    kernel = phi_q @ phi_k.transpose(-2, -1)  # (B, h, L, L), all positive
    full = (kernel / kernel.sum(-1, keepdim=True)) @ v
    torch.testing.assert_close(linear_attention(q, k, v, eps=0.0), full, **TOL)
    causal = kernel.masked_fill(~causal_mask(9), 0.0)
    torch.testing.assert_close(linear_attention(q, k, v, causal=True, eps=0.0),
                               (causal / causal.sum(-1, keepdim=True)) @ v, **TOL)


# --------------------------------------------------------------------------------- GQA

def gqa(d_model=24, num_heads=6, num_kv_heads=2, bias=True, seed=0):
    torch.manual_seed(seed)
    return GroupedQueryAttention(d_model, num_heads, num_kv_heads, bias=bias).double()


@pytest.mark.parametrize("num_kv_heads", [1, 2, 3, 6])
def test_gqa_equals_sdpa_with_enable_gqa(num_kv_heads):
    layer = gqa(num_kv_heads=num_kv_heads)
    x = torch.randn(2, 7, 24, dtype=torch.float64)
    mask = causal_mask(7)
    out, weights = layer(x, x, x, mask)
    q = layer.split_heads(layer.w_q(x))
    k, v = layer.split_heads(layer.w_k(x)), layer.split_heads(layer.w_v(x))
    assert k.shape == (2, num_kv_heads, 7, 4)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    torch.testing.assert_close(out, layer.w_o(layer.merge_heads(ref)), **TOL)
    assert weights.shape == (2, 6, 7, 7)


def test_gqa_with_as_many_kv_heads_as_heads_is_multi_head_attention():
    layer = gqa(num_kv_heads=6)
    mha = MultiHeadAttention(24, 6).double()
    mha.load_state_dict(layer.state_dict())
    x, mem = torch.randn(2, 5, 24, dtype=torch.float64), torch.randn(2, 8, 24, dtype=torch.float64)
    torch.testing.assert_close(layer(x, mem, mem)[0], mha(x, mem, mem)[0], **TOL)


def test_gqa_cache_holds_kv_heads_only_and_equals_the_full_pass():
    layer = gqa(num_kv_heads=2, bias=False)
    layer.rotary = True
    x = torch.randn(1, 6, 24, dtype=torch.float64)
    full, _ = layer(x, x, x, causal_mask(6))
    cache = KVCache()
    steps = [layer(x[:, t:t + 1], x[:, t:t + 1], x[:, t:t + 1], cache=cache)[0] for t in range(6)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, **TOL)
    assert cache.k.shape == (1, 2, 6, 4), "the cache keeps num_kv_heads heads: 3x less than 6 heads"


def test_gqa_says_which_head_counts_fit():
    with pytest.raises(ValueError, match="multiple of num_kv_heads"):
        GroupedQueryAttention(24, 6, 4)


def test_peak_memory_of_tiled_attention_grows_linearly_and_the_explicit_one_quadratically():
    """experiments.peak_allocated_bytes, the chapter's measurement: the explicit attention holds at least
    one (L, L) matrix at its peak, the tiled one only O(L) accumulators and one tile."""
    from attnlab.course.experiments import peak_allocated_bytes

    peaks = {}
    for L in (256, 512):
        q, k, v = qkv(B=1, h=1, Lq=L, Lk=L, d=16, dv=16)
        peaks[L] = (peak_allocated_bytes(lambda: scaled_dot_product_attention(q, k, v)),
                    peak_allocated_bytes(lambda: tiled_attention(q, k, v, block_q=64, block_k=64)))
        assert peaks[L][0] >= L * L * 8 and peaks[L][1] < L * L * 8 / 2
    assert peaks[512][1] < 3 * peaks[256][1], peaks


def test_gqa_fused_path_equals_the_explicit_one_with_a_padding_mask():
    layer = gqa(num_kv_heads=3)
    fused = GroupedQueryAttention(24, 6, 3, use_sdpa=True).double()
    fused.load_state_dict(layer.state_dict())
    x = torch.randn(2, 5, 24, dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])[:, None, None, :]
    torch.testing.assert_close(fused(x, x, x, mask)[0], layer(x, x, x, mask)[0], **TOL)
