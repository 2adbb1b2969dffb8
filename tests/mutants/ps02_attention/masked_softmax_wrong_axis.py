# fails: test_masked_softmax test_attention_values test_attention_mask test_attention_fully_masked test_general_attention
# replaces: masked_softmax
def masked_softmax(scores, mask):
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-2)
    return weights if mask is None else weights.masked_fill(~mask, 0.0)
