# fails: test_mha_self_attention test_mha_cross_attention test_mha_mask test_mha_dropout
# the catalogued bug itself: scores divided by sqrt(d_model), not sqrt(d_head)
# (its forward also leaves dropout out, so dropout never acts in training)
# appends-bug: mha_scale_by_d_model as MultiHeadAttention
