# fails: test_decoder_post_norm test_decoder_pre_norm
# the catalogued bug: the decoder layer drops its residual connections
# appends-bug: decoder_layer_no_residual as DecoderLayer
