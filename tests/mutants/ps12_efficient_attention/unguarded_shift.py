# fails: test_online_softmax_masked test_tiled_masks
# subtracts the new maximum even where it is still -inf (every key so far masked): -inf - (-inf) is NaN,
# and the NaN of a row that is empty in one block stays in it for good
# replaces: online_softmax_answer
def online_softmax_update(running_max, running_sum, running_out, scores, values, mask=None):
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    new_max = torch.maximum(running_max, scores.amax(dim=-1))
    rescale = torch.exp(running_max - new_max)
    weights = torch.exp(scores - new_max.unsqueeze(-1))
    new_sum = running_sum * rescale + weights.sum(dim=-1)
    new_out = running_out * rescale.unsqueeze(-1) + weights @ values
    return new_max, new_sum, new_out
