# fails:
# another right answer: count the learner's own layer, built on the meta device (shapes, no memory)
# replaces: encoder_layer_parameters
def encoder_layer_parameters(d_model, d_ff):
    with torch.device("meta"):
        layer = EncoderLayer(d_model, 1, d_ff)
    return sum(p.numel() for p in layer.parameters())
