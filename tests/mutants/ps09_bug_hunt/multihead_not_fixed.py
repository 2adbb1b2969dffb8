# fails: test_fixed_multihead
# replaces: fixed_multihead
class MultiHeadAttention(MultiHeadAttentionV1):
    pass
