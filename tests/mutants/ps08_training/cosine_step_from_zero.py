# fails: test_cosine_schedule
# replaces: cosine_schedule
def warmup_cosine_lambda(warmup, total_steps, final=0.0):
    warmup = max(1, warmup)

    def factor(step):  # step used as s: LambdaLR's step 0 gets learning rate 0
        if step <= warmup:
            return step / warmup
        t = min(1.0, (step - warmup) / (total_steps - warmup))
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))

    return factor
