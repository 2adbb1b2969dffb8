# fails: test_alibi_slopes test_alibi_bias
# uses 2^(-8h/n) for every head count, also when n is not a power of two (not the authors' slopes)
# replaces: alibi
def alibi_slopes(num_heads):
    if num_heads < 1:
        raise ValueError(f"num_heads must be positive, got {num_heads}")
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / num_heads) for h in range(num_heads)], dtype=torch.float64)


def alibi_bias(num_heads, length_q, length_k=None, causal=True, device=None, dtype=torch.float32):
    length_k = length_q if length_k is None else length_k
    i = torch.arange(length_k - length_q, length_k, device=device).unsqueeze(1)
    j = torch.arange(length_k, device=device).unsqueeze(0)
    distance = (i - j).clamp(min=0) if causal else (i - j).abs()
    slopes = alibi_slopes(num_heads).to(device=device, dtype=dtype)
    return -slopes.view(-1, 1, 1) * distance.to(dtype)
