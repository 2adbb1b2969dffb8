"""MultiHeadAttention equals torch.nn.MultiheadAttention(batch_first=True) with the same weights.

float64, rtol=1e-10, atol=1e-12 (the same products summed in another order agree to ~1e-15).
"""
import pytest
import torch
import torch.nn as nn

from attnlab.course.interop import torch_multihead
from attnlab import MultiHeadAttention, causal_mask
from attnlab.multihead import KVCache

TOL = dict(rtol=1e-10, atol=1e-12)


def pair(d_model, num_heads, bias=True, seed=0):
    torch.manual_seed(seed)
    ours = MultiHeadAttention(d_model, num_heads, bias=bias).double()
    return ours, torch_multihead(ours)


def inputs(B, Lq, Lk, d, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, Lq, d, generator=g, dtype=torch.float64)
    mem = torch.randn(B, Lk, d, generator=g, dtype=torch.float64)
    return x, mem


@pytest.mark.parametrize("d_model,num_heads,bias", [(8, 1, True), (12, 3, True), (16, 4, False), (32, 8, True)])
def test_self_attention_equals_pytorch(d_model, num_heads, bias):
    ours, theirs = pair(d_model, num_heads, bias)
    x, _ = inputs(2, 5, 5, d_model)
    out, w = ours(x, x, x)
    ref, ref_w = theirs(x, x, x, need_weights=True, average_attn_weights=True)
    torch.testing.assert_close(out, ref, **TOL)
    assert w.shape == (2, num_heads, 5, 5)
    torch.testing.assert_close(w.mean(1), ref_w, **TOL)
    _, ref_w_heads = theirs(x, x, x, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(w, ref_w_heads, **TOL)


def test_cross_attention_with_padding_equals_pytorch():
    ours, theirs = pair(16, 4)
    x, mem = inputs(3, 4, 7, 16)
    lengths = torch.tensor([7, 3, 5])
    keep = torch.arange(7)[None, :] < lengths[:, None]  # (B, Lk) True = real token
    out, w = ours(x, mem, mem, keep[:, None, None, :])
    ref, ref_w = theirs(x, mem, mem, key_padding_mask=~keep)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(w.mean(1), ref_w, **TOL)


def test_causal_and_padding_mask_equals_pytorch():
    ours, theirs = pair(12, 3)
    x, _ = inputs(2, 6, 6, 12)
    keep = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    out, _ = ours(x, x, x, causal_mask(6) & keep[:, None, None, :])
    ref, _ = theirs(x, x, x, attn_mask=~causal_mask(6), key_padding_mask=~keep)
    torch.testing.assert_close(out, ref, **TOL)


def test_per_head_mask_equals_pytorch():
    ours, theirs = pair(8, 2)
    x, mem = inputs(2, 3, 5, 8)
    g = torch.Generator().manual_seed(3)
    mask = torch.rand(2, 2, 3, 5, generator=g) < 0.5
    mask[..., 0] = True
    out, _ = ours(x, mem, mem, mask)
    ref, _ = theirs(x, mem, mem, attn_mask=~mask.reshape(4, 3, 5))
    torch.testing.assert_close(out, ref, **TOL)


def test_gradients_equal_pytorch():
    ours, theirs = pair(12, 3)
    x, mem = inputs(2, 4, 6, 12)
    ours(x, mem, mem)[0].square().sum().backward()
    theirs(x, mem, mem)[0].square().sum().backward()
    w_in = torch.cat([ours.w_q.weight.grad, ours.w_k.weight.grad, ours.w_v.weight.grad])
    torch.testing.assert_close(w_in, theirs.in_proj_weight.grad, **TOL)
    torch.testing.assert_close(ours.w_o.weight.grad, theirs.out_proj.weight.grad, **TOL)


@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_fast_path_equals_explicit_path(masked):
    explicit, _ = pair(16, 4)
    fast = MultiHeadAttention(16, 4, use_sdpa=True).double()
    fast.load_state_dict(explicit.state_dict())
    x, mem = inputs(2, 5, 6, 16)
    mask = None
    if masked:
        mask = torch.ones(2, 1, 5, 6, dtype=torch.bool)
        mask[1, :, :, 3:] = False
        mask[0, :, 2] = False  # a query with no key at all: both paths give zeros
    out, w = fast(x, mem, mem, mask)
    ref, _ = explicit(x, mem, mem, mask)
    assert w is None
    torch.testing.assert_close(out, ref, **TOL)


def test_heads_attend_independently():
    """Changing the query projection of head 0 changes head 0's weights only."""
    m, _ = pair(8, 2)
    x, _ = inputs(1, 4, 4, 8)
    _, before = m(x, x, x)
    with torch.no_grad():
        m.w_q.weight[:4] *= 3.0
    _, after = m(x, x, x)
    assert not torch.allclose(before[:, 0], after[:, 0])
    torch.testing.assert_close(before[:, 1], after[:, 1], **TOL)


def test_indivisible_heads_raise_clear_error():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)


def test_wrong_input_shape_raises_clear_error():
    m = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"\(B, L, d_model=8\)"):
        m(torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8))


@pytest.mark.parametrize("rotary,sdpa", [(False, False), (True, False), (True, True)])
def test_kv_cache_in_chunks_equals_one_causal_call(rotary, sdpa):
    """Feeding a sequence in chunks through a KVCache gives the outputs of one call with a causal mask."""
    torch.manual_seed(0)
    m = MultiHeadAttention(16, 4, rotary=rotary, use_sdpa=sdpa).double().eval()
    x, _ = inputs(2, 7, 7, 16)
    full, _ = m(x, x, x, causal_mask(7))  # (2, 7, 16)
    cache, outs = KVCache(), []
    for start, end in ((0, 3), (3, 4), (4, 7)):
        chunk = x[:, start:end]
        mask = causal_mask(end)[start:end]  # (L, end): the chunk's queries over every key so far
        out, _ = m(chunk, chunk, chunk, mask, cache=cache)
        outs.append(out)
        assert cache.length == end
    torch.testing.assert_close(torch.cat(outs, dim=1), full, **TOL)


@pytest.mark.parametrize("d_model,num_heads,bias,masked", [(8, 1, True, False), (12, 3, True, True), (16, 4, False, True)])
def test_packed_self_attention_equals_pytorch(d_model, num_heads, bias, masked):
    """PackedSelfAttention's w_qkv has the layout of nn.MultiheadAttention's in_proj_weight: its
    weights copied there as they are give the same outputs and per-head weights (float64)."""
    from attnlab.multihead import PackedSelfAttention

    torch.manual_seed(0)
    packed = PackedSelfAttention(d_model, num_heads, bias=bias).double()
    theirs = nn.MultiheadAttention(d_model, num_heads, bias=bias, batch_first=True).double()
    with torch.no_grad():
        theirs.in_proj_weight.copy_(packed.w_qkv.weight)
        theirs.out_proj.weight.copy_(packed.w_o.weight)
        if bias:
            theirs.in_proj_bias.copy_(packed.w_qkv.bias)
            theirs.out_proj.bias.copy_(packed.w_o.bias)
    x, _ = inputs(2, 5, 5, d_model)
    mask = causal_mask(5) if masked else None
    out, w = packed(x, mask)
    ref, ref_w = theirs(x, x, x, attn_mask=None if mask is None else ~mask, need_weights=True,
                        average_attn_weights=False)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(w, ref_w, **TOL)
    # and the same module as MultiHeadAttention with w_qkv cut into w_q, w_k, w_v
    split = MultiHeadAttention(d_model, num_heads, bias=bias).double()
    with torch.no_grad():
        for name, rows in zip(("w_q", "w_k", "w_v"), packed.w_qkv.weight.split(d_model)):
            getattr(split, name).weight.copy_(rows)
        if bias:
            for name, b in zip(("w_q", "w_k", "w_v"), packed.w_qkv.bias.split(d_model)):
                getattr(split, name).bias.copy_(b)
        split.w_o.load_state_dict(packed.w_o.state_dict())
    torch.testing.assert_close(split(x, x, x, mask)[0], out, **TOL)
