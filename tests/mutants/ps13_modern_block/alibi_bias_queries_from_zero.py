# fails: test_alibi_bias
# numbers the queries from 0 even when there are fewer queries than keys (decoding with a cache);
# the slopes are right
# replaces: alibi
def alibi_slopes(num_heads):
    if num_heads < 1:
        raise ValueError(f"num_heads must be positive, got {num_heads}")

    def power_of_two(n):
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(num_heads).is_integer():
        slopes = power_of_two(num_heads)
    else:
        closest = 2 ** math.floor(math.log2(num_heads))
        slopes = power_of_two(closest) + power_of_two(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float64)


def alibi_bias(num_heads, length_q, length_k=None, causal=True, device=None, dtype=torch.float32):
    length_k = length_q if length_k is None else length_k
    i = torch.arange(length_q, device=device).unsqueeze(1)  # should be the last length_q positions
    j = torch.arange(length_k, device=device).unsqueeze(0)
    distance = (i - j).clamp(min=0) if causal else (i - j).abs()
    slopes = alibi_slopes(num_heads).to(device=device, dtype=dtype)
    return -slopes.view(-1, 1, 1) * distance.to(dtype)
