# fails: test_mha_mask
# the catalogued bug itself, inside the module: attends to exactly the keys it should not
# appends-bug: sdpa_inverted_mask as scaled_dot_product_attention
