# fails: test_score_variance test_over_scaled_weights
# returns a standard deviation, sqrt(d_k) * sigma2, where a variance is asked; predicts that dividing
# by d_k makes the softmax pick one key (it is too little scaling that does that, not too much)
# replaces: score_variance_answer
def score_variance(d_k, sigma2):
    return math.sqrt(d_k) * sigma2

# replaces: over_scaled_answer
over_scaled_weights = "one key"
