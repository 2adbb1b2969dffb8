# fails: test_peak_learning_rate
# replaces: peak_learning_rate_answer
def peak_learning_rate(d_model, warmup):
    return d_model ** -0.5 * warmup ** -1.5  # the warmup term at s = 1: the start of the warmup, not its end
