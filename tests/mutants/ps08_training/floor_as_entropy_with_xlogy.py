# fails:
# Another right answer: the entropy of q computed with tensors, 0 log 0 handled by torch.special.xlogy.
# replaces: smoothed_loss_floor_answer
def smoothed_loss_floor(vocab_size, smoothing):
    q = torch.full((vocab_size,), smoothing / vocab_size, dtype=torch.float64)
    q[0] += 1 - smoothing
    return torch.special.xlogy(q, q).sum().neg()
