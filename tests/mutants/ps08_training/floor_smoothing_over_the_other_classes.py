# fails: test_smoothed_loss_floor
# replaces: smoothed_loss_floor_answer
def smoothed_loss_floor(vocab_size, smoothing):
    x_log_x = lambda x: x * math.log(x) if x > 0 else 0.0
    # eps spread over the V - 1 wrong classes only: another smoothing than the one of section 1
    return -x_log_x(1 - smoothing) - (vocab_size - 1) * x_log_x(smoothing / (vocab_size - 1))
