# fails: test_attention_dropout
# accepts dropout_p and never uses it: right whenever dropout_p = 0, which is all the old check tried
# replaces: scaled_dot_product_attention
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    weights = masked_softmax(scores, mask)
    return weights @ value, weights
