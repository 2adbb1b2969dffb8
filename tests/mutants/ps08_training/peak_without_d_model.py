# replaces: peak_learning_rate_answer
# fails: test_peak_learning_rate
peak_learning_rate = 4000 ** -0.5
