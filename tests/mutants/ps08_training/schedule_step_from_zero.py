# fails: test_schedule
# replaces: schedule
def inverse_sqrt_lambda(warmup):
    warmup = max(1, warmup)
    return lambda step: min(step / warmup, math.sqrt(warmup / max(step, 1)))  # step 0 gets learning rate 0
