# fails: test_attention_values test_attention_mask
# Casts to float32: float64 inputs come back as float32.
# replaces: scaled_dot_product_attention
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    query, key, value = query.float(), key.float(), value.float()
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    weights = masked_softmax(scores, mask)
    attended = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    return attended @ value, weights
