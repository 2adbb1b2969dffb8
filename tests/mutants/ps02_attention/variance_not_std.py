# fails: test_score_std
# replaces: score_std_answer
score_std_unscaled = 64.0
