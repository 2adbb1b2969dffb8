# fails: test_changed_positions
# believes a padding mask hides the padded queries too, so that nothing changes
# replaces: changed_positions_answer
changed_positions = {
    "feed_forward": [3],
    "encoder_layer": [0, 1, 2, 3, 4],
    "encoder_layer_padding": [],
    "decoder_layer_causal": [3, 4],
    "decoder_layer_memory": [0, 1, 2, 3, 4],
}
