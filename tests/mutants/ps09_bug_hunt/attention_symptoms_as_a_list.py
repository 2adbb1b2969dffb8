# fails:
# Another right answer: the letters as a list, in another order and case.
# replaces: attention_symptoms_answer
attention_symptoms = ["e", "A", "b"]
