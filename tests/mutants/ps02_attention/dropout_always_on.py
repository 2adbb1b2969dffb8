# fails: test_attention_values test_attention_mask test_attention_dropout
# a fixed dropout of 0.1 whatever dropout_p says: even dropout_p = 0 drops weights
# replaces: scaled_dot_product_attention
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    weights = masked_softmax(scores, mask)
    return F.dropout(weights, 0.1) @ value, weights
