# fails: test_mha_self_attention test_mha_cross_attention test_mha_mask
# the catalogued bug itself: scores divided by sqrt(d_model), not sqrt(d_head)
# appends-bug: mha_scale_by_d_model as MultiHeadAttention
