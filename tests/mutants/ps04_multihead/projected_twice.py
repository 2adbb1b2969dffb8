# fails: test_mha_self_attention test_mha_cross_attention test_mha_mask
# a seed tutorial's formula (appendix A): MultiHead(XW_q, XW_k, XW_v) W_o, so inputs that were already
# projected are projected again inside the module (and W_o applied twice)
# appends-bug: mha_projected_twice as MultiHeadAttention
