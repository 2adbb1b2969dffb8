# fails: test_encoder_layer_parameters
# replaces: encoder_layer_parameters
def encoder_layer_parameters(d_model, d_ff):
    return 4 * (d_model * d_model + d_model) + (d_model * d_ff + d_ff) + (d_ff * d_model + d_model)  # no LayerNorms
