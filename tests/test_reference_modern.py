"""The modern block's parts (attnlab/modern.py) against PyTorch's built-ins and the papers' formulas.

float64; RMSNorm equals ``torch.nn.RMSNorm`` (rtol=1e-12, atol=1e-14); SwiGLU is
``W_2 (silu(W_1 x) * W_3 x)``; ALiBi's slopes are the papers' geometric sequences; T5's buckets are a
hand-computed table and the formula of the T5 paper and code, and a score bias is added to the scores.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from attnlab import causal_mask
from attnlab.modern import (ModernDecoderLayer, attention_with_score_bias, RelativePositionBias, RMSNorm, SwiGLU, alibi_bias, alibi_slopes,
                            relative_position_bucket)
from attnlab.multihead import GroupedQueryAttention

TOL = dict(rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("eps", [1e-6, 1e-5])
def test_rmsnorm_equals_pytorch(eps):
    ours, theirs = RMSNorm(16, eps).double(), nn.RMSNorm(16, eps=eps).double()
    with torch.no_grad():
        ours.weight.copy_(torch.linspace(0.5, 2.0, 16))
        theirs.weight.copy_(ours.weight)
    x = torch.randn(3, 5, 16, dtype=torch.float64) * 3 + 1  # a mean that LayerNorm would remove
    torch.testing.assert_close(ours(x), theirs(x), **TOL)
    assert not torch.allclose(ours(x), F.layer_norm(x, (16,)) * ours.weight), "RMSNorm subtracts no mean"


def test_swiglu_is_its_formula():
    torch.manual_seed(0)
    ffn = SwiGLU(8, 12).double()
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    expected = (F.silu(x @ ffn.w_1.weight.T) * (x @ ffn.w_3.weight.T)) @ ffn.w_2.weight.T
    torch.testing.assert_close(ffn(x), expected, **TOL)
    assert all(m.bias is None for m in (ffn.w_1, ffn.w_2, ffn.w_3))


def test_alibi_slopes_are_geometric():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)], dtype=torch.float64))
    torch.testing.assert_close(alibi_slopes(4), torch.tensor([4.0 ** -(i + 1) for i in range(4)], dtype=torch.float64))
    # Not a power of two: the 4 slopes of 4 heads, then every other slope of 8 heads (the authors' code).
    torch.testing.assert_close(alibi_slopes(6), torch.tensor([1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8],
                                                             dtype=torch.float64))
    ratios = alibi_slopes(16)[1:] / alibi_slopes(16)[:-1]
    torch.testing.assert_close(ratios, torch.full((15,), 2 ** -0.5, dtype=torch.float64))


def test_alibi_bias_is_minus_slope_times_distance():
    bias = alibi_bias(2, 4, dtype=torch.float64)
    slopes = alibi_slopes(2)
    for h in range(2):
        for i in range(4):
            for j in range(4):
                assert bias[h, i, j] == (-slopes[h] * (i - j) if j <= i else 0)
    both = alibi_bias(2, 4, causal=False, dtype=torch.float64)
    assert both[0, 0, 3] == both[0, 3, 0] == -slopes[0] * 3
    # Decoding with a cache: one query, the last of 5 positions.
    torch.testing.assert_close(alibi_bias(2, 1, 5, dtype=torch.float64), alibi_bias(2, 5, dtype=torch.float64)[:, -1:])


def test_modern_decoder_layer_is_causal_and_pre_norm():
    torch.manual_seed(0)
    layer = ModernDecoderLayer(16, 4, 24, num_kv_heads=2).double().eval()
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    out = layer(x, causal_mask(6))
    changed = x.clone()
    changed[:, 4:] += 1.0  # the future changes...
    torch.testing.assert_close(layer(changed, causal_mask(6))[:, :4], out[:, :4], **TOL)  # ...the past does not
    assert isinstance(layer.attn_norm, RMSNorm) and layer.attn.num_kv_heads == 2
    assert all(p.dim() > 1 or name.endswith("weight") for name, p in layer.named_parameters()), "no biases"
    params = sum(p.numel() for p in layer.parameters())
    d, kv = 16, 2 * 4
    assert params == 2 * d * d + 2 * d * kv + 3 * d * 24 + 2 * d  # q, o, k, v (grouped), SwiGLU, 2 norms
    assert torch.isfinite(out).all()


# T5's defaults (32 buckets, max_distance 128), worked out by hand from the formula
# n/2 + floor(log(d / (n/2)) / log(128 / (n/2)) * (n - n/2)), n the buckets of one direction.
CAUSAL_BUCKETS = {  # distance into the past -> bucket; n = 32: distances 0..15 exact, then log(d/16)/log(8)*16
    0: 0, 1: 1, 5: 5, 15: 15, 16: 16, 17: 16, 20: 17, 23: 18, 32: 21, 45: 23, 64: 26, 90: 29, 127: 31, 128: 31,
    500: 31,
}
BIDIRECTIONAL_BUCKETS = {  # key - query -> bucket; n = 16 per side: 0..7 exact, then 8 + log(d/8)/log(16)*8
    0: 0, -1: 1, -7: 7, -8: 8, -11: 8, -16: 10, -22: 10, -32: 12, -45: 12, -64: 14, -127: 15, -128: 15, -1000: 15,
    1: 17, 7: 23, 8: 24, 16: 26, 32: 28, 64: 30, 127: 31, 1000: 31,  # keys after the query: 16 + the same
}


def test_t5_buckets_are_the_hand_computed_table():
    past = torch.tensor(list(CAUSAL_BUCKETS))
    assert relative_position_bucket(-past, bidirectional=False).tolist() == list(CAUSAL_BUCKETS.values())
    assert relative_position_bucket(past, bidirectional=False).tolist() == [0] * len(past), "future keys: bucket 0"
    rel = torch.tensor(list(BIDIRECTIONAL_BUCKETS))
    assert relative_position_bucket(rel, bidirectional=True).tolist() == list(BIDIRECTIONAL_BUCKETS.values())


def t5_bucket_formula(rel: int, bidirectional: bool, num_buckets: int, max_distance: int) -> int:
    """One relative position's bucket in plain Python (float64), as the T5 paper's code computes it."""
    offset = 0
    if bidirectional:
        num_buckets //= 2
        offset, distance = (num_buckets if rel > 0 else 0), abs(rel)
    else:
        distance = max(-rel, 0)
    max_exact = num_buckets // 2
    if distance < max_exact:
        return offset + distance
    large = max_exact + int(math.log(distance / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact))
    return offset + min(large, num_buckets - 1)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (8, 20), (16, 64)])
def test_t5_buckets_follow_the_formula(bidirectional, num_buckets, max_distance):
    rel = torch.arange(-300, 301)
    got = relative_position_bucket(rel, bidirectional, num_buckets, max_distance)
    assert got.tolist() == [t5_bucket_formula(r, bidirectional, num_buckets, max_distance) for r in rel.tolist()]
    assert got.min() == 0 and got.max() == num_buckets - 1, "every bucket is used, none beyond"
    if bidirectional:  # keys before the query use the lower half, keys after it the upper half
        assert (got[rel < 0] < num_buckets // 2).all() and (got[rel > 0] >= num_buckets // 2).all()


def test_relative_position_bias_looks_up_one_scalar_per_bucket_and_head():
    torch.manual_seed(0)
    rpb = RelativePositionBias(num_heads=3, num_buckets=8, max_distance=20, bidirectional=False).double()
    assert torch.count_nonzero(rpb.embedding.weight) == 0, "starts as no bias at all"
    with torch.no_grad():
        rpb.embedding.weight.normal_()
    bias = rpb(6)
    assert bias.shape == (3, 6, 6)
    weight = rpb.embedding.weight  # (num_buckets, num_heads)
    for h in range(3):
        for i in range(6):
            for j in range(6):
                expected = weight[t5_bucket_formula(j - i, False, 8, 20), h]
                assert bias[h, i, j] == expected
                if j > i:  # causal: a future key is bucket 0, the same as distance 0
                    assert bias[h, i, j] == bias[h, i, i]
    torch.testing.assert_close(rpb(1, 6), bias[:, -1:], **TOL)  # decoding with a cache: the last query
    # 8 causal buckets, max_distance 20: distances 0..3 exact, then log-spaced, 14 and beyond in the last
    long = rpb(25)[0, -1].flip(0)  # head 0, the last query; long[d] = the bias at distance d
    buckets = [0, 1, 2, 3, 4, 4, 5, 5, 5, 6, 6, 6, 6, 6] + [7] * 11
    torch.testing.assert_close(long, weight[buckets, 0], **TOL)
    both = RelativePositionBias(3, 8, 20, bidirectional=True).double()
    with torch.no_grad():
        both.embedding.weight.copy_(weight)
    b = both(6)
    # 4 buckets a side: distances 0, 1 exact, 2..19 log-spaced into 2 and 3; keys after the query add 4
    assert b[1, 0, 1] == weight[4 + 1, 1] and b[1, 0, 3] == weight[4 + 2, 1], "after the query: the upper half"
    assert b[1, 1, 0] == weight[1, 1] and b[1, 3, 0] == weight[2, 1], "before the query: the lower half"
    # trained like any embedding: only the buckets in use get a gradient
    rpb(3).sum().backward()
    used = rpb.embedding.weight.grad.abs().sum(1) > 0
    assert used.tolist() == [True, True, True, False, False, False, False, False]


def test_a_score_bias_is_added_to_the_scaled_scores():
    torch.manual_seed(0)
    attn = GroupedQueryAttention(8, 4, 2, bias=False).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = causal_mask(5)
    bias = alibi_bias(4, 5, dtype=torch.float64)  # (h, L, L)
    out = attention_with_score_bias(attn, x, mask, bias)
    q = attn.split_heads(attn.w_q(x))  # (B, h, L, d_head)
    k = attn.split_heads(attn.w_k(x)).repeat_interleave(2, dim=1)
    v = attn.split_heads(attn.w_v(x)).repeat_interleave(2, dim=1)
    scores = (q @ k.transpose(-2, -1) / math.sqrt(2) + bias).masked_fill(~mask, -math.inf)
    expected = attn.w_o(attn.merge_heads(torch.softmax(scores, -1) @ v))
    torch.testing.assert_close(out, expected, **TOL)
    torch.testing.assert_close(attention_with_score_bias(attn, x, mask, torch.zeros(4, 5, 5, dtype=torch.float64)),
                               attn(x, x, x, mask)[0], **TOL)
    with pytest.raises(ValueError, match="rotary=False"):
        attention_with_score_bias(GroupedQueryAttention(8, 4, 2, rotary=True), x.float(), mask, bias.float())


@pytest.mark.parametrize("scheme", ["alibi", "t5"])
def test_modern_layer_without_rotary_takes_a_bias_and_stays_causal(scheme):
    torch.manual_seed(0)
    layer = ModernDecoderLayer(16, 4, 24, rotary=False).double().eval()
    assert not layer.attn.rotary
    if scheme == "alibi":
        bias = alibi_bias(4, 6, dtype=torch.float64)
    else:
        rpb = RelativePositionBias(4, 8, 20, bidirectional=False).double()
        with torch.no_grad():
            rpb.embedding.weight.normal_()
        bias = rpb(6)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    out = layer(x, causal_mask(6), bias=bias)
    assert not torch.allclose(out, layer(x, causal_mask(6))), "the bias changes the output"
    changed = x.clone()
    changed[:, 4:] += 1.0
    torch.testing.assert_close(layer(changed, causal_mask(6), bias=bias)[:, :4], out[:, :4], **TOL)
