"""Positional encodings: the sinusoidal formula checked in numpy, rotary embeddings' two properties."""
import numpy as np
import pytest
import torch

from attnlab import (
    LearnedPositionalEmbedding,
    PositionalEncoding,
    RotaryEmbedding,
    apply_rotary,
    sinusoidal_positional_encoding,
)


@pytest.mark.parametrize("max_len,d_model", [(1, 2), (50, 16), (128, 64), (7, 6)])
def test_sinusoidal_matches_formula_in_numpy(max_len, d_model):
    pe = sinusoidal_positional_encoding(max_len, d_model)
    expected = np.zeros((max_len, d_model))
    for pos in range(max_len):
        for i in range(d_model // 2):
            expected[pos, 2 * i] = np.sin(pos / 10000 ** (2 * i / d_model))
            expected[pos, 2 * i + 1] = np.cos(pos / 10000 ** (2 * i / d_model))
    assert pe.shape == (max_len, d_model) and pe.dtype == torch.float32
    np.testing.assert_allclose(pe.numpy(), expected, rtol=0, atol=1e-6)  # float32 rounding of values in [-1, 1]


def test_sinusoidal_odd_dimension_raises():
    with pytest.raises(ValueError, match="even"):
        sinusoidal_positional_encoding(10, 7)


def test_pe_shift_is_a_linear_map():
    """PE(pos + k) = M_k PE(pos) for a fixed matrix M_k (a rotation per frequency)."""
    pe = sinusoidal_positional_encoding(60, 16).double()
    k = 5
    M = torch.linalg.lstsq(pe[:-k], pe[k:]).solution  # least squares fit of PE[pos] -> PE[pos + k]
    torch.testing.assert_close(pe[:-k] @ M, pe[k:], rtol=0, atol=1e-6)


def test_positional_encoding_module_adds_and_checks_length():
    m = PositionalEncoding(8, max_len=10)
    x = torch.zeros(2, 6, 8)
    torch.testing.assert_close(m(x), sinusoidal_positional_encoding(10, 8)[:6].expand(2, 6, 8))
    with pytest.raises(ValueError, match="max_len"):
        m(torch.zeros(1, 11, 8))


def test_learned_embedding_adds_a_trained_vector_per_position():
    m = LearnedPositionalEmbedding(4, max_len=5)
    x = torch.randn(3, 5, 4)
    torch.testing.assert_close(m(x) - x, m.embedding.weight.expand(3, 5, 4))
    with pytest.raises(ValueError, match="max_len"):
        m(torch.zeros(1, 6, 4))


def test_rotary_preserves_norms():
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    y = apply_rotary(x, torch.arange(9))
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(apply_rotary(x, torch.zeros(9)), x)  # position 0: no rotation


def test_rotary_dot_product_depends_only_on_relative_position():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(16, generator=g, dtype=torch.float64), torch.randn(16, generator=g, dtype=torch.float64)

    def score(m, n):
        return apply_rotary(q[None], torch.tensor([m]))[0] @ apply_rotary(k[None], torch.tensor([n]))[0]

    for offset in (0, 3, -4):
        scores = torch.stack([score(m, m - offset) for m in range(5, 40, 7)])
        torch.testing.assert_close(scores, scores[0].expand_as(scores), rtol=1e-10, atol=1e-10)
    assert not torch.isclose(score(10, 7), score(10, 4))  # a different offset gives a different score


def test_rotary_module_matches_function_and_odd_dim_raises():
    x = torch.randn(2, 5, 6)
    torch.testing.assert_close(RotaryEmbedding()(x), apply_rotary(x, torch.arange(5)))
    with pytest.raises(ValueError, match="even"):
        apply_rotary(torch.randn(2, 5, 7), torch.arange(5))


@pytest.mark.parametrize("make", [lambda: PositionalEncoding(8, max_len=12), lambda: LearnedPositionalEmbedding(8, max_len=12)],
                         ids=["sinusoidal", "learned"])
def test_additive_encoding_with_offset_is_a_slice_of_the_full_one(make):
    """Incremental decoding feeds position k alone: offset=k must give what position k gets in the full sequence."""
    m = make().eval()
    x = torch.randn(2, 12, 8)
    full = m(x)  # (2, 12, 8)
    for k, L in ((0, 12), (3, 1), (5, 4), (11, 1)):
        torch.testing.assert_close(m(x[:, k : k + L], offset=k), full[:, k : k + L], rtol=0, atol=0)
    with pytest.raises(ValueError, match="max_len"):
        m(x[:, :2], offset=11)  # positions 11 and 12: one past the table


def test_rotary_module_with_offset_is_a_slice_of_the_full_rotation():
    rope = RotaryEmbedding()
    x = torch.randn(2, 3, 10, 8, dtype=torch.float64)
    full = rope(x)  # (2, 3, 10, 8)
    for k, L in ((0, 10), (4, 1), (6, 3)):
        torch.testing.assert_close(rope(x[..., k : k + L, :], offset=k), full[..., k : k + L, :], rtol=0, atol=0)
    with pytest.raises(ValueError, match="not both"):
        rope(x, torch.arange(10), offset=2)


def test_rotary_half_is_rotary_on_permuted_features():
    """The half-split layout (pairs (i, i + d/2)) is the interleaved one on features stored in another order."""
    from attnlab.positional import apply_rotary_half

    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    positions = torch.tensor([0, 4, 1, 7, 100, 2, 3, 5, 9])
    p = torch.arange(8).view(2, 4).T.flatten()  # (0, 4, 1, 5, 2, 6, 3, 7): pair i next to each other
    torch.testing.assert_close(apply_rotary_half(x, positions)[..., p], apply_rotary(x[..., p], positions),
                               rtol=1e-12, atol=1e-12)
    assert not torch.allclose(apply_rotary_half(x, positions), apply_rotary(x, positions))
    with pytest.raises(ValueError, match="even"):
        apply_rotary_half(torch.randn(2, 5, 7), torch.arange(5))
