# fails: test_online_softmax_blocks test_online_softmax_large_scores test_online_softmax_masked test_tiled_attention test_tiled_masks
# rescales the running output when a block raises the maximum, but not the running sum: the weights
# no longer sum to 1 (right only while the first block holds the maximum)
# replaces: online_softmax_answer
def online_softmax_update(running_max, running_sum, running_out, scores, values, mask=None):
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    new_max = torch.maximum(running_max, scores.amax(dim=-1))
    shift = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)
    rescale = torch.exp(running_max - shift)
    weights = torch.exp(scores - shift.unsqueeze(-1))
    new_sum = running_sum + weights.sum(dim=-1)
    new_out = running_out * rescale.unsqueeze(-1) + weights @ values
    return new_max, new_sum, new_out
