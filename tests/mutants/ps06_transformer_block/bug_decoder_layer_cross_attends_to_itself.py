# fails: test_decoder_post_norm test_decoder_pre_norm
# the catalogued bug: cross-attention attends to the decoder's own states instead of the memory
# appends-bug: decoder_layer_cross_attends_to_itself as DecoderLayer
