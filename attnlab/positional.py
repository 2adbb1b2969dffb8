"""Ways to tell attention where each token is: sinusoidal, learned and rotary encodings."""
from __future__ import annotations

import math

import torch
import torch.nn as nn


def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d_model)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model)).

    Returns a float32 tensor of shape (max_len, d_model).
    """
    if d_model % 2 != 0:
        raise ValueError(f"d_model must be even to pair sines with cosines, got {d_model}")
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d_model/2,)
    angle = position / torch.pow(10000.0, two_i / d_model)  # (max_len, d_model/2)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding to a batch-first input (B, L, d_model), then dropout.

    ``offset`` is the position of x's first element: incremental decoding feeds position t alone.
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        end = offset + x.size(1)
        if end > self.pe.size(0):
            raise ValueError(f"sequence length {end} exceeds max_len {self.pe.size(0)}; raise max_len")
        return self.dropout(x + self.pe[offset:end].to(x.dtype))  # (B, L, d_model)


class LearnedPositionalEmbedding(nn.Module):
    """Adds a trained vector per position (as in BERT/GPT) to a batch-first input, then dropout.

    ``offset`` is the position of x's first element, as in :class:`PositionalEncoding`.
    """

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        end = offset + x.size(1)
        if end > self.embedding.num_embeddings:
            raise ValueError(
                f"sequence length {end} exceeds max_len {self.embedding.num_embeddings}: a learned "
                "embedding has no vector for unseen positions"
            )
        return self.dropout(x + self.embedding.weight[offset:end])  # (B, L, d_model)


def rotary_angles(positions: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Angles pos * base^(-2i/dim) of shape (L, dim/2), in float64 for accuracy."""
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)
    return positions.to(torch.float64).unsqueeze(-1) * inv_freq  # (L, dim/2)


def apply_rotary(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (RoPE, Su et al. 2021).

    Rotates each pair (x[..., 2i], x[..., 2i+1]) of x (..., L, dim) by the angle
    positions[l] * base^(-2i/dim). Rotations keep norms, and the dot product of a
    rotated query at position m with a rotated key at position n depends only on m - n.
    """
    dim = x.size(-1)
    if dim % 2 != 0:
        raise ValueError(f"rotary embeddings rotate pairs of features; the last dimension must be even, got {dim}")
    angles = rotary_angles(positions, dim, base)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (L, dim/2)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # (..., L, dim/2)
    out = torch.stack((x_even * cos - x_odd * sin, x_even * sin + x_odd * cos), dim=-1)  # (..., L, dim/2, 2)
    return out.flatten(-2)  # (..., L, dim)



def apply_rotary_half(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary embedding in the "half-split" layout of GPT-NeoX and Hugging Face's LLaMA.

    Pair i is (x[..., i], x[..., i + dim/2]), turned by positions[l] * base^(-2i/dim): the same
    rotations as :func:`apply_rotary` on features stored in another order, so
    apply_rotary_half(x)[..., p] == apply_rotary(x[..., p]) with p = (0, dim/2, 1, dim/2 + 1, ...).
    """
    dim = x.size(-1)
    if dim % 2 != 0:
        raise ValueError(f"rotary embeddings rotate pairs of features; the last dimension must be even, got {dim}")
    angles = rotary_angles(positions, dim, base)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (L, dim/2)
    first, second = x[..., : dim // 2], x[..., dim // 2:]  # (..., L, dim/2): pair i is (first[i], second[i])
    return torch.cat((first * cos - second * sin, first * sin + second * cos), dim=-1)  # (..., L, dim)


class RotaryEmbedding(nn.Module):
    """Module form of :func:`apply_rotary` for x (..., L, dim).

    Positions default to offset, ..., offset + L - 1 (``offset`` as in :class:`PositionalEncoding`).
    """

    def __init__(self, base: float = 10000.0):
        super().__init__()
        self.base = base

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None, offset: int = 0) -> torch.Tensor:
        if positions is None:
            positions = torch.arange(offset, offset + x.size(-2), device=x.device)
        elif offset:
            raise ValueError("pass either positions or offset, not both: positions are already absolute")
        return apply_rotary(x, positions, self.base)
