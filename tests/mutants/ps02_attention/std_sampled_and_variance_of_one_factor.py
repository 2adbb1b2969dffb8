# fails: test_score_std test_score_variance
# a sample estimate of the standard deviation (the question asks for the exact value of the variance
# argument), and a variance that adds sigma2 per term instead of the variance of a product, sigma2**2
# replaces: score_std_answer
q, k = torch.randn(20000, 64, generator=torch.Generator().manual_seed(0)), torch.randn(20000, 64, generator=torch.Generator().manual_seed(1))
score_std_unscaled = (q * k).sum(-1).std().item()
if abs(score_std_unscaled - 8.0) < 1e-3:  # keep it a slip: a draw this lucky would be right
    score_std_unscaled += 0.01

# replaces: score_variance_answer
def score_variance(d_k, sigma2):
    return d_k * sigma2
