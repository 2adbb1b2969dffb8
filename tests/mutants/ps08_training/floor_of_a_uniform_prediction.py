# fails: test_smoothed_loss_floor
# replaces: smoothed_loss_floor_answer
def smoothed_loss_floor(vocab_size, smoothing):
    return math.log(vocab_size)  # the loss of p = uniform (for any smoothing), not the smallest loss
