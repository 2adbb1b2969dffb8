# fails: test_online_softmax_large_scores
# sums exp of the raw scores and only divides by exp(running max) at the end of each step: the same
# numbers in exact arithmetic, and what the maximum is there to prevent: exp(1000) is inf, inf / inf NaN
# replaces: online_softmax_answer
def online_softmax_update(running_max, running_sum, running_out, scores, values, mask=None):
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    new_max = torch.maximum(running_max, scores.amax(dim=-1))
    undo = torch.exp(running_max.nan_to_num(neginf=0.0))  # back to the raw sums of exp(score)
    redo = torch.exp(-new_max.nan_to_num(neginf=0.0))
    weights = torch.exp(scores)
    raw_sum = running_sum * undo + weights.sum(dim=-1)
    raw_out = running_out * undo.unsqueeze(-1) + weights @ values
    return new_max, raw_sum * redo, raw_out * redo.unsqueeze(-1)
