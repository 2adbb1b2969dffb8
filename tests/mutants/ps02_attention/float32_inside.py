# fails: test_attention_values test_attention_mask test_general_attention
# computes in float32 and casts back, so float64 inputs get float64 results with float32 accuracy
# (about 1e-7 relative): the contract says results are computed in the inputs' dtype
# replaces: scaled_dot_product_attention
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    dtype = query.dtype
    query, key, value = query.float(), key.float(), value.float()
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    weights = masked_softmax(scores, mask)
    attended = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    return (attended @ value).to(dtype), weights.to(dtype)

# replaces: general_attention
def general_attention(query, key, value, weight, mask=None):
    dtype = query.dtype
    scores = query.float() @ weight.float() @ key.float().transpose(-2, -1)
    weights = masked_softmax(scores, mask)
    return (weights @ value.float()).to(dtype), weights.to(dtype)
