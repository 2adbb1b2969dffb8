# fails: test_attention_dropout
# drops entries of the output instead of attention weights: a value vector is then half-used, not
# one key's contribution dropped
# replaces: scaled_dot_product_attention
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    weights = masked_softmax(scores, mask)
    return F.dropout(weights @ value, dropout_p), weights
