# fails: test_attention_dropout
# zeroes each weight with probability dropout_p but keeps the others as they are: the expected
# value of every weight shrinks by 1 - dropout_p (F.dropout divides the kept ones by 1 - dropout_p)
# replaces: scaled_dot_product_attention
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    weights = masked_softmax(scores, mask)
    keep = torch.rand_like(weights) >= dropout_p
    return (weights * keep) @ value, weights
