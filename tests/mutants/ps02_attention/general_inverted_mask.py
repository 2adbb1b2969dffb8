# fails: test_general_attention
# passes ~mask on: a padding key is attended to, a real one hidden
# replaces: general_attention
def general_attention(query, key, value, weight, mask=None):
    scores = query @ weight @ key.transpose(-2, -1)
    weights = masked_softmax(scores, None if mask is None else ~mask)
    return weights @ value, weights
