# fails: test_rotary_half
# half-split pairs, but the angles repeated pair by pair (repeat_interleave, the interleaved layout's
# table): feature j gets the angle of pair j // 2 instead of pair j mod d/2
# replaces: rotary_half
def apply_rotary_half(x, positions, base=10000.0):
    d = x.size(-1)
    angles = rotary_angles(positions, d, base).repeat_interleave(2, dim=-1)  # (L, d)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    partner = torch.cat((-x[..., d // 2:], x[..., : d // 2]), dim=-1)  # pair i: (x_i, x_{i + d/2})
    return x * cos + partner * sin
