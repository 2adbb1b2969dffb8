# fails: test_fixed_attention test_fixed_multihead
# The NaN fixed, the axes still counted from the front: right only for 3-D inputs whose key length is d_k.
# replaces: fixed_attention
def scaled_dot_product_attention(query, key, value, mask=None):
    d_k = key.size(1)
    scores = torch.matmul(query, key.transpose(1, 2)) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), torch.finfo(scores.dtype).min)
    weights = F.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.masked_fill(mask.logical_not(), 0.0)
    return torch.matmul(weights, value), weights
