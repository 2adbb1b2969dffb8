# fails: test_smoothed_loss_floor
# replaces: smoothed_loss_floor_answer
def smoothed_loss_floor(vocab_size, smoothing):
    q = torch.full((vocab_size,), smoothing / vocab_size, dtype=torch.float64)
    q[0] += 1 - smoothing
    return -(q * q.log()).sum().item()  # 0 * log 0 = nan when smoothing is 0
