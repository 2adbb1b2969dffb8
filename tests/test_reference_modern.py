"""The modern block's parts (attnlab/modern.py) against PyTorch's built-ins and the papers' formulas.

float64; RMSNorm equals ``torch.nn.RMSNorm`` (rtol=1e-12, atol=1e-14); SwiGLU is
``W_2 (silu(W_1 x) * W_3 x)``; ALiBi's slopes are the papers' geometric sequences.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from attnlab import causal_mask
from attnlab.modern import ModernDecoderLayer, RMSNorm, SwiGLU, alibi_bias, alibi_slopes

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
