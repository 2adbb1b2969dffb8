# fails:
# Another right answer: the peak found by evaluating the paper's formula over the steps.
# replaces: peak_learning_rate_answer
def peak_learning_rate(d_model, warmup):
    return max(d_model ** -0.5 * min(s ** -0.5, s * warmup ** -1.5) for s in range(1, 2 * warmup + 2))
