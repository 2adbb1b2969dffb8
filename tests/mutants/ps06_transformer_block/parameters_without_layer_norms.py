# fails: test_decoder_layer_parameters
# replaces: decoder_layer_parameters_answer
decoder_layer_parameters = 2 * 4 * (512 * 512 + 512) + (512 * 2048 + 2048) + (2048 * 512 + 512)
