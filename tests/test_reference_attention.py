"""scaled_dot_product_attention equals torch.nn.functional.scaled_dot_product_attention.

All comparisons in float64 with rtol=1e-10, atol=1e-12: the two compute the same sums in a
different order, so they agree to about 1e-15; the margin leaves room for other BLAS builds.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from attnlab import AdditiveAttention, SelfAttention, causal_mask, masked_softmax, scaled_dot_product_attention
from attnlab.attention import CrossAttention, general_attention

TOL = dict(rtol=1e-10, atol=1e-12)
SHAPES = [  # (batch dims, Lq, Lk, d_k, d_v)
    ((), 1, 1, 1, 1),
    ((3,), 4, 6, 8, 5),
    ((2, 4), 7, 7, 16, 16),
    ((2, 3, 2), 5, 9, 4, 3),
]


def qkv(batch, lq, lk, dk, dv, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*batch, lq, dk, generator=g, dtype=torch.float64, requires_grad=grad)
    k = torch.randn(*batch, lk, dk, generator=g, dtype=torch.float64, requires_grad=grad)
    v = torch.randn(*batch, lk, dv, generator=g, dtype=torch.float64, requires_grad=grad)
    return q, k, v


def random_mask(shape, seed):
    """A random boolean mask with at least one allowed key per query row (PyTorch gives NaN otherwise)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(*shape, generator=g) < 0.6
    mask[..., 0] = True
    return mask


@pytest.mark.parametrize("shape", SHAPES)
def test_unmasked_equals_pytorch(shape):
    q, k, v = qkv(*shape)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), **TOL)
    assert weights.shape == (*shape[0], shape[1], shape[2])
    torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)), **TOL)


@pytest.mark.parametrize("shape", SHAPES)
def test_random_mask_equals_pytorch(shape):
    batch, lq, lk, _, _ = shape
    q, k, v = qkv(*shape, seed=1)
    mask = random_mask((*batch, lq, lk), seed=2)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TOL)
    assert (weights[~mask] == 0).all(), "masked keys must get exactly zero weight"


def test_broadcast_padding_and_causal_masks_equal_pytorch():
    B, h, L, d = 3, 2, 6, 8
    q, k, v = qkv((B, h), L, L, d, d, seed=3)
    lengths = torch.tensor([6, 4, 1])
    padding = (torch.arange(L)[None, :] < lengths[:, None])[:, None, None, :]  # (B, 1, 1, L)
    for mask in (padding, causal_mask(L), causal_mask(L) & padding):
        ours, _ = scaled_dot_product_attention(q, k, v, mask)
        torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TOL)
    ours, _ = scaled_dot_product_attention(q, k, v, causal_mask(L))
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), **TOL)


@pytest.mark.parametrize("masked", [False, True])
def test_gradients_equal_pytorch(masked):
    q, k, v = qkv((2, 3), 5, 7, 4, 6, seed=4, grad=True)
    mask = random_mask((2, 1, 5, 7), seed=5) if masked else None
    grad_out = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    ours = torch.autograd.grad((scaled_dot_product_attention(q, k, v, mask)[0] * grad_out).sum(), (q, k, v))
    theirs = torch.autograd.grad((F.scaled_dot_product_attention(q, k, v, attn_mask=mask) * grad_out).sum(), (q, k, v))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **TOL)


def test_gradcheck():
    q, k, v = qkv((2,), 3, 4, 5, 2, seed=6, grad=True)
    mask = random_mask((3, 4), seed=7)
    assert torch.autograd.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask)[0], (q, k, v))


def test_fully_masked_row_gives_zeros_not_nan():
    q, k, v = qkv((2,), 3, 4, 5, 6, seed=8, grad=True)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False  # query 1 may attend to nothing
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert (out[:, 1] == 0).all() and (weights[:, 1] == 0).all()
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    # the other rows are untouched by the empty one
    torch.testing.assert_close(out[:, [0, 2]], F.scaled_dot_product_attention(q, k, v)[:, [0, 2]], **TOL)


def test_scale_is_one_over_sqrt_dk():
    """Hand-computed on a 1-query, 2-key example: weights = softmax([q.k1, q.k2] / sqrt(d_k))."""
    q = torch.tensor([[1.0, 2.0, 0.0, 1.0]], dtype=torch.float64)
    k = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    v = torch.eye(2, dtype=torch.float64)
    _, w = scaled_dot_product_attention(q, k, v)
    s = torch.tensor([1.0, 3.0], dtype=torch.float64) / math.sqrt(4)
    torch.testing.assert_close(w[0], torch.softmax(s, 0), **TOL)


def test_float32_and_dtype_preserved():
    q, k, v = (t.float() for t in qkv((2,), 3, 4, 8, 8, seed=9))
    out, w = scaled_dot_product_attention(q, k, v)
    assert out.dtype == w.dtype == torch.float32
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), rtol=1e-5, atol=1e-6)


def test_bad_input_errors_are_clear():
    q, k, v = qkv((2,), 3, 4, 8, 8)
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(q, k, v, torch.ones(3, 4))
    with pytest.raises(ValueError, match="d_k"):
        scaled_dot_product_attention(q, k[..., :5], v)
    with pytest.raises(ValueError, match="Lk"):
        scaled_dot_product_attention(q, k, v[:, :2])


def test_masked_softmax_rows_sum_to_one_or_zero():
    scores = torch.randn(4, 5, dtype=torch.float64)
    mask = random_mask((4, 5), seed=10)
    mask[2] = False
    w = masked_softmax(scores, mask)
    torch.testing.assert_close(w.sum(-1), torch.tensor([1.0, 1.0, 0.0, 1.0], dtype=torch.float64), **TOL)


def test_additive_attention_matches_formula():
    torch.manual_seed(0)
    attn = AdditiveAttention(3, 4, 5).double()
    q, k = torch.randn(2, 2, 3, dtype=torch.float64), torch.randn(2, 6, 4, dtype=torch.float64)
    v = torch.randn(2, 6, 7, dtype=torch.float64)
    mask = random_mask((2, 1, 6), seed=11)
    out, w = attn(q, k, v, mask)
    for b in range(2):
        for i in range(2):
            s = torch.stack([attn.v(torch.tanh(attn.w_q(q[b, i]) + attn.w_k(k[b, j]))).squeeze() for j in range(6)])
            s = s.masked_fill(~mask[b, 0], float("-inf"))
            torch.testing.assert_close(w[b, i], torch.softmax(s, 0), **TOL)
            torch.testing.assert_close(out[b, i], torch.softmax(s, 0) @ v[b], **TOL)


def test_dropout_zeroes_and_rescales_the_weights_that_meet_the_values():
    """dropout_p > 0: with value = [I | 1] the output shows the dropped weights themselves (each 0 or
    w / (1 - p)) and their row sums; the returned weights are those before dropout."""
    torch.manual_seed(12)
    q, k, _ = qkv((2,), 8, 16, 4, 4, seed=12)
    value = torch.cat([torch.eye(16, dtype=torch.float64), torch.ones(16, 1, dtype=torch.float64)], -1)  # (Lk, Lk + 1)
    p = 0.5
    out, weights = scaled_dot_product_attention(q, k, value, dropout_p=p)
    torch.testing.assert_close(weights, scaled_dot_product_attention(q, k, value)[1], **TOL)
    dropped = out[..., :16]
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], weights[kept] / (1 - p), **TOL)
    torch.testing.assert_close(out[..., 16], dropped.sum(-1), **TOL)
    assert 0.3 < 1 - kept.double().mean().item() < 0.7
    torch.testing.assert_close(scaled_dot_product_attention(q, k, value, dropout_p=0.0)[0], weights @ value, **TOL)


@pytest.mark.parametrize("masked", [False, True])
def test_general_attention_equals_pytorch_with_scale_one(masked):
    """Luong's general score q^T W k is dot-product attention of (q W) and k, not scaled: PyTorch's
    fused function with scale=1. Queries and keys of different sizes (d_q = 5, d_k = 3)."""
    g = torch.Generator().manual_seed(13)
    q = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 3, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 3, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    mask = random_mask((2, 1, 4, 6), seed=14) if masked else None
    ours, weights = general_attention(q, k, v, w, mask)
    theirs = F.scaled_dot_product_attention(q @ w, k, v, attn_mask=mask, scale=1.0)
    torch.testing.assert_close(ours, theirs, **TOL)
    assert weights.shape == (2, 3, 4, 6)
    grad_out = torch.randn_like(ours)
    for a, b in zip(torch.autograd.grad(ours, (q, k, v, w), grad_out), torch.autograd.grad(theirs, (q, k, v, w), grad_out)):
        torch.testing.assert_close(a, b, **TOL)
    with pytest.raises(ValueError, match="d_q, d_k"):
        general_attention(q, k, v, w.T)


def test_cross_attention_equals_pytorch_and_is_self_attention_on_one_sequence():
    """Queries from x, keys and values from memory (Lq != Lk), against PyTorch's fused function on the
    same projections; on memory = x it is SelfAttention with the same weights."""
    torch.manual_seed(15)
    cross = CrossAttention(8, 4, 6).double()
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    memory = torch.randn(2, 5, 8, dtype=torch.float64)
    padding = (torch.arange(5)[None, :] < torch.tensor([5, 2])[:, None])[:, None, :]  # (B, 1, Lk)
    with torch.no_grad():
        out, weights = cross(x, memory, padding)
        theirs = F.scaled_dot_product_attention(cross.w_q(x), cross.w_k(memory), cross.w_v(memory), attn_mask=padding)
        torch.testing.assert_close(out, theirs, **TOL)
        assert weights.shape == (2, 3, 5) and (weights[1, :, 2:] == 0).all()
        self_attention = SelfAttention(8, 4, 6).double()
        self_attention.load_state_dict(cross.state_dict())
        for a, b in zip(cross(x, x), self_attention(x)):
            torch.testing.assert_close(a, b, **TOL)
