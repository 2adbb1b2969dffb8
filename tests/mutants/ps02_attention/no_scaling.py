# fails: test_attention_values test_attention_mask
# replaces: scaled_dot_product_attention
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    scores = query @ key.transpose(-2, -1)
    weights = masked_softmax(scores, mask)
    attended = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    return attended @ value, weights
