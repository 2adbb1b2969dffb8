# fails: test_encoding_symptoms
# sin + cos is 1 at position 0, not 0; and the values above 1 went unmeasured.
# replaces: encoding_symptoms_answer
encoding_symptoms = "bc"
