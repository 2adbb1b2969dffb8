# fails: test_mha_self_attention test_mha_cross_attention test_mha_mask test_mha_dropout
# a seed tutorial's bug (appendix A): the raw query, key and value are cut into heads with no W_q, W_k,
# W_v (and an unused int(sqrt(d_head))); its forward also leaves dropout out, so dropout never acts in training
# appends-bug: mha_heads_without_projections as MultiHeadAttention
