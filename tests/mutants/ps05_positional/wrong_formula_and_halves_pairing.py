# fails: test_pe_values test_pe_odd_d_model test_rotary_values
# the catalogued pe_wrong_formula (exponent 2*(2i)/d, no odd check); RoPE pairing x_i with x_{i+d/2} (a rotation, but not the reference's pairs)
# appends-bug: pe_wrong_formula as sinusoidal_positional_encoding
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
    x_even, x_odd = x[..., : dim // 2], x[..., dim // 2 :]  # pairs (x_i, x_{i + d/2}), GPT-NeoX style
    return torch.cat((x_even * cos - x_odd * sin, x_even * sin + x_odd * cos), dim=-1)
