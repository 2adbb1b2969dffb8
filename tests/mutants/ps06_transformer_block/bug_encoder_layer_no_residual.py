# fails: test_encoder_post_norm test_encoder_pre_norm
# the catalogued bug: the encoder layer drops its residual connections
# appends-bug: encoder_layer_no_residual as EncoderLayer
