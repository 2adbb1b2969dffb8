# fails: test_mha_split_merge test_mha_self_attention test_mha_cross_attention test_mha_mask
# the catalogued bug itself: view(B, h, L, d_head) without the transpose mixes positions
# appends-bug: mha_wrong_head_split as MultiHeadAttention
