# fails: test_cosine_schedule
# replaces: cosine_schedule
def warmup_cosine_lambda(warmup, total_steps, final=0.0):
    warmup = max(1, warmup)

    def factor(step):
        s = step + 1
        if s <= warmup:
            return s / warmup
        t = min(1.0, (s - warmup) / total_steps)  # the decay stretched over total_steps: ends above final
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))

    return factor
