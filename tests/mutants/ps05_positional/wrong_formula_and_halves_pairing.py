# fails: test_pe_values test_rotary_values
# bugs.py: pe_wrong_formula (exponent 2*(2i)/d); RoPE pairing x_i with x_{i+d/2} (a rotation, but not the reference's pairs)
# replaces: sinusoidal
def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    if d_model % 2 != 0:
        raise ValueError(f"d_model must be even to pair sines with cosines, got {d_model}")
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d_model/2,)
    angle = position / torch.pow(10000.0, 2 * two_i / d_model)  # (max_len, d_model/2)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()

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
