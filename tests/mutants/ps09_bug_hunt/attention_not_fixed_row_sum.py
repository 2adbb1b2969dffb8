# fails: test_fixed_attention test_fixed_attention_fully_masked
# replaces: fixed_attention
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    return attention_b(query, key, value, mask)
