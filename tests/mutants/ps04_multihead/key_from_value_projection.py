# fails: test_mha_self_attention test_mha_cross_attention test_mha_mask
# the catalogued bug itself: the keys are projected with w_v (w_k is never used)
# appends-bug: mha_key_from_value_projection as MultiHeadAttention
