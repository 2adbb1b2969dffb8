# fails: test_attention_fully_masked
# Fills with a large negative number but forgets to zero the weights: a fully masked row is uniform.
# replaces: masked_softmax
def masked_softmax(scores, mask):
    if mask is None:
        return torch.softmax(scores, dim=-1)
    return torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)
