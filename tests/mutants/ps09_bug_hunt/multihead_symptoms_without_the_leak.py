# fails: test_multihead_symptoms
# The missing gradients measured, the leak through the causal mask not.
# replaces: multihead_symptoms_answer
multihead_symptoms = "a"
