# fails: test_peak_learning_rate
# replaces: peak_learning_rate_answer
peak_learning_rate = 4000 ** -0.5
