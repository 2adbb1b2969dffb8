# fails: test_mha_mask test_mha_dropout test_packed_self_attention
# the catalogued bug itself, inside the module: attends to exactly the keys it should not
# (the catalogued function also ignores dropout_p, so dropout never acts in training; and PackedSelfAttention calls it too)
# appends-bug: sdpa_inverted_mask as scaled_dot_product_attention
