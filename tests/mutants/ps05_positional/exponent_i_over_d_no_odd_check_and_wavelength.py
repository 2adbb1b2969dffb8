# fails: test_pe_values test_pe_odd_d_model test_slowest_wavelength
# one misreading of the formula throughout (exponent i/d_model with i the pair index, not 2i/d_model), and no ValueError for an odd d_model (a RuntimeError instead)
# replaces: sinusoidal
def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d_model/2,)
    angle = position / torch.pow(10000.0, (two_i / 2) / d_model)  # i / d_model with i the pair index  # (max_len, d_model/2)
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
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # (..., L, dim/2)
    out = torch.stack((x_even * cos - x_odd * sin, x_even * sin + x_odd * cos), dim=-1)  # (..., L, dim/2, 2)
    return out.flatten(-2)  # (..., L, dim)
# replaces: wavelength_answer
slowest_wavelength = 2 * math.pi * 10000 ** (3 / 8)
