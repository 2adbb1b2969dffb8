# replaces: score_std_answer
# fails: test_score_std
score_std_unscaled = 64.0
