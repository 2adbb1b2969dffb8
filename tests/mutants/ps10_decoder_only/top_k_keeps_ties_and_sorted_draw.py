# fails: test_top_k test_sample_replay
# two slips of the sampler: top-k keeps every token tied with the k-th (more than k survive), and the
# draw walks the cumulative probabilities in order of decreasing probability instead of index order:
# the right distribution (the frequencies pass), but not the token the contract gives for this noise
# replaces: sampler
def filter_probabilities(logits, temperature=1.0, top_k=None, top_p=None):
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    if top_k is not None and top_k < 1:
        raise ValueError("top_k must be at least 1")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError("top_p must be in (0, 1]")
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_k is not None:
        kth = probs.topk(min(top_k, probs.size(-1)), dim=-1).values[..., -1:]
        probs = probs * (probs >= kth)  # BUG: ties with the k-th all survive
        probs = probs / probs.sum(dim=-1, keepdim=True)
    if top_p is not None:
        order = torch.sort(probs, dim=-1, descending=True, stable=True).indices
        rank = torch.argsort(order, dim=-1)
        sorted_probs = torch.gather(probs, -1, order)
        keep = torch.gather(torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p, -1, rank)
        probs = probs * keep
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def sample_next(logits, noise, temperature=1.0, top_k=None, top_p=None):
    probs = filter_probabilities(logits, temperature, top_k, top_p)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    cdf = torch.cumsum(sorted_probs, dim=-1)  # BUG: in order of decreasing probability
    position = (cdf <= noise.unsqueeze(-1)).sum(dim=-1, keepdim=True).clamp(max=probs.size(-1) - 1)
    return torch.gather(order, -1, position)[..., 0]
