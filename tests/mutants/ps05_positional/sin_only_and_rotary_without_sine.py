# fails: test_pe_values test_pe_odd_d_model test_rotary_values test_rotary_relative
# the catalogued pe_sin_only (no odd check); RoPE scaling each pair by cos instead of rotating it (no sine terms)
# appends-bug: pe_sin_only as sinusoidal_positional_encoding
# replaces: rotary
def rotary_angles(positions: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Angles pos * base^(-2i/dim) of shape (L, dim/2), in float64 for accuracy."""
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)
    return positions.to(torch.float64).unsqueeze(-1) * inv_freq  # (L, dim/2)


def apply_rotary(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    dim = x.size(-1)
    if dim % 2 != 0:
        raise ValueError(f"rotary embeddings rotate pairs of features; the last dimension must be even, got {dim}")
    angles = rotary_angles(positions, dim, base)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (L, dim/2)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # (..., L, dim/2)
    out = torch.stack((x_even * cos, x_odd * cos), dim=-1)  # (..., L, dim/2, 2)
    return out.flatten(-2)  # (..., L, dim)
