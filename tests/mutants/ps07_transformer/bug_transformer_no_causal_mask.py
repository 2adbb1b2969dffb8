# fails: test_transformer_post_norm test_transformer_pre_norm test_transformer_mask_properties
# the catalogued bug: the decoder sees the future (no causal mask)
# appends-bug: transformer_no_causal_mask as Transformer
