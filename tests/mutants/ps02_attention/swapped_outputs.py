# fails: test_attention_shapes test_attention_values test_attention_mask test_attention_fully_masked test_attention_dropout
# replaces: scaled_dot_product_attention
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    weights = masked_softmax(scores, mask)
    attended = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    return weights, attended @ value
