# fails: test_steps_to_fade test_large_inputs_effect
# int() rounds the real solution of rho**d = factor down: one step short of the first distance that is
# at or below the factor; the prediction is a word that is not one of the offered choices
# replaces: steps_to_fade_answer
def steps_to_fade(rho: float, factor: float) -> int:
    return int(math.log(factor) / math.log(rho))

# replaces: large_inputs_answer
large_inputs_effect = "vanish"
