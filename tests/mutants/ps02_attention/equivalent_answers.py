# fails:
# other right answers: -inf then NaN replaced by 0 in masked_softmax, weights returned after dropout
# (as nn.MultiheadAttention does), d_k ** 0.5 from the key, the variance written as a product, the
# prediction with another case and spacing, and the general score multiplied in the other order
# replaces: masked_softmax
def masked_softmax(scores, mask):
    if mask is None:
        return scores.softmax(-1)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)

# replaces: scaled_dot_product_attention
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    scores = torch.matmul(query, key.transpose(-1, -2)) / key.shape[-1] ** 0.5
    weights = F.dropout(masked_softmax(scores, mask), dropout_p)  # p = 0: the identity
    return torch.matmul(weights, value), weights

# replaces: score_variance_answer
def score_variance(d_k, sigma2):
    return float(sum(sigma2 * sigma2 for _ in range(d_k)))

# replaces: over_scaled_answer
over_scaled_weights = " Uniform"

# replaces: general_attention
def general_attention(query, key, value, weight, mask=None):
    scores = query @ (weight @ key.transpose(-2, -1))
    weights = masked_softmax(scores, mask)
    return weights @ value, weights
