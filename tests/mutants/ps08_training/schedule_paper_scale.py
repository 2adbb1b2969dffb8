# fails: test_schedule test_training_run
# replaces: schedule
def inverse_sqrt_lambda(warmup):
    warmup = max(1, warmup)
    return lambda step: min((step + 1) ** -0.5, (step + 1) * warmup ** -1.5)  # the paper's shape, peak not 1
