# fails: test_modern_layer_parameters
# counts keys and values at full size, as if every query head had its own key/value head
# replaces: modern_layer_parameters
def modern_layer_parameters(d_model, num_heads, num_kv_heads, d_ff):
    return 4 * d_model * d_model + 3 * d_model * d_ff + 2 * d_model
