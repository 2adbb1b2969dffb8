# fails: test_steps_to_fade test_large_inputs_effect
# round() instead of the first whole distance at or below the factor (right only when the fraction
# is above one half); predicts that a gain of 1.5 makes the gradient grow whatever the inputs,
# forgetting that tanh saturates
# replaces: steps_to_fade_answer
def steps_to_fade(rho: float, factor: float) -> int:
    return round(math.log(factor) / math.log(rho))

# replaces: large_inputs_answer
large_inputs_effect = "grow"
