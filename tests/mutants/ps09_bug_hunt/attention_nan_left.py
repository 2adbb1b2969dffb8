# fails: test_fixed_attention_fully_masked
# The axes fixed, the -inf kept: right on every query that may attend to something.
# replaces: fixed_attention
def scaled_dot_product_attention(query, key, value, mask=None):
    d_k = key.size(-1)
    scores = torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), float("-inf"))
    weights = F.softmax(scores, dim=-1)
    return torch.matmul(weights, value), weights
