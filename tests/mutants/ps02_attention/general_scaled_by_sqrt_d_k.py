# fails: test_general_attention
# divides Luong's general score by sqrt(d_k) out of habit: the general score is q^T W k, not scaled
# replaces: general_attention
def general_attention(query, key, value, weight, mask=None):
    scores = query @ weight @ key.transpose(-2, -1) / math.sqrt(key.size(-1))
    weights = masked_softmax(scores, mask)
    return weights @ value, weights
