# fails: test_schedule
# replaces: schedule
def inverse_sqrt_lambda(warmup):
    warmup = max(1, warmup)
    return lambda step: min(1.0, math.sqrt(warmup / (step + 1)))  # full learning rate from the first step
