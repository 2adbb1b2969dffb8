# fails: test_fixed_positional_encoding
# All sines first, then all cosines: the same features in another order, not the contract.
# replaces: fixed_positional_encoding
def sinusoidal_positional_encoding(max_len, d_model):
    pair = torch.arange(d_model // 2, dtype=torch.float64)
    angle = torch.arange(max_len, dtype=torch.float64)[:, None] / 10000.0 ** (2 * pair / d_model)
    return torch.cat([angle.sin(), angle.cos()], dim=1).float()
