# fails: test_attention_dropout
# drops scores before the softmax: a zeroed score is not a zero weight, and the weights no longer
# come from the scores the function was given
# replaces: scaled_dot_product_attention
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    scores = F.dropout(query @ key.transpose(-2, -1) / math.sqrt(query.size(-1)), dropout_p)
    weights = masked_softmax(scores, mask)
    return weights @ value, weights
