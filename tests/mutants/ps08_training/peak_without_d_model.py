# fails: test_peak_learning_rate
# replaces: peak_learning_rate_answer
def peak_learning_rate(d_model, warmup):
    return warmup ** -0.5  # the factor d_model^-0.5 forgotten
