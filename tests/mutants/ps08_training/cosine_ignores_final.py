# fails: test_cosine_schedule
# replaces: cosine_schedule
def warmup_cosine_lambda(warmup, total_steps, final=0.0):
    warmup = max(1, warmup)

    def factor(step):
        s = step + 1
        if s <= warmup:
            return s / warmup
        t = min(1.0, (s - warmup) / (total_steps - warmup))
        return 0.5 * (1 + math.cos(math.pi * t))  # down to 0 whatever final says

    return factor
