# fails: test_top_p test_sample_replay test_sample_frequencies
# top-p keeps the tokens whose cumulative probability, themselves included, stays below p: the token
# that crosses p is dropped (and with p below the top token's probability, nothing is left)
# replaces: sampler
def filter_probabilities(logits, temperature=1.0, top_k=None, top_p=None):
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    if top_k is not None and top_k < 1:
        raise ValueError("top_k must be at least 1")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError("top_p must be in (0, 1]")
    probs = torch.softmax(logits / temperature, dim=-1)
    order = torch.sort(probs, dim=-1, descending=True, stable=True).indices
    rank = torch.argsort(order, dim=-1)
    if top_k is not None:
        probs = probs * (rank < top_k)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    if top_p is not None:
        cumulative = torch.cumsum(torch.gather(probs, -1, order), dim=-1)
        keep = torch.gather(cumulative < top_p, -1, rank)  # BUG: the crossing token fails this test
        probs = probs * keep
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def sample_next(logits, noise, temperature=1.0, top_k=None, top_p=None):
    probs = filter_probabilities(logits, temperature, top_k, top_p)
    cdf = torch.cumsum(probs, dim=-1)
    token = (cdf <= noise.unsqueeze(-1)).sum(dim=-1)
    last_kept = probs.size(-1) - 1 - torch.argmax(torch.flip(probs > 0, dims=[-1]).int(), dim=-1)
    return torch.minimum(token, last_kept)
