# fails: test_attention_symptoms
# Read, not measured: -inf looks as if it could leak weight onto masked keys, and the crash on
# inputs with heads goes unnoticed.
# replaces: attention_symptoms_answer
attention_symptoms = "bde"
