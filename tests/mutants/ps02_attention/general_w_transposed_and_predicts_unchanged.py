# fails: test_general_attention test_over_scaled_weights
# uses W transposed (right only for a symmetric W, and a shape error when d_q != d_k); predicts that
# the scale does not matter
# replaces: general_attention
def general_attention(query, key, value, weight, mask=None):
    scores = query @ weight.T @ key.transpose(-2, -1)
    weights = masked_softmax(scores, mask)
    return weights @ value, weights

# replaces: over_scaled_answer
over_scaled_weights = "unchanged"
