# fails:
# NOT a bug: other correct ways must score full marks: the loss from log_softmax, gather and a mask;
# the sampler with masked_fill(-inf), argsort ranks and searchsorted; generation that feeds the last
# token too and keeps a list of new tokens
# replaces: causal_lm_loss
def causal_lm_loss(logits, tokens, pad_id=0):
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    targets = tokens[:, 1:]
    picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    real = (targets != pad_id).to(logits.dtype)
    return -(picked * real).sum() / real.sum()
# replaces: sampler
def filter_probabilities(logits, temperature=1.0, top_k=None, top_p=None):
    if temperature <= 0 or (top_k is not None and top_k < 1) or (top_p is not None and not 0 < top_p <= 1):
        raise ValueError("bad sampling parameters")
    scaled = logits / temperature
    V = scaled.size(-1)
    probs = torch.softmax(scaled, dim=-1)
    order = torch.argsort(-probs, dim=-1, stable=True)
    ranks = torch.argsort(order, dim=-1)
    if top_k is not None:
        scaled = scaled.masked_fill(ranks >= top_k, float("-inf"))
        probs = torch.softmax(scaled, dim=-1)
    if top_p is not None:
        sorted_probs = probs.gather(-1, order)
        mass_above = torch.cat([torch.zeros_like(sorted_probs[..., :1]), sorted_probs.cumsum(-1)[..., :-1]], dim=-1)
        drop_sorted = mass_above >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        scaled = scaled.masked_fill(drop, float("-inf"))
        probs = torch.softmax(scaled, dim=-1)
    return probs


def sample_next(logits, noise, temperature=1.0, top_k=None, top_p=None):
    probs = filter_probabilities(logits, temperature, top_k, top_p)
    cdf = probs.cumsum(-1).contiguous()
    token = torch.searchsorted(cdf, noise.unsqueeze(-1).to(cdf.dtype).contiguous(), right=True).squeeze(-1)
    kept = torch.arange(probs.size(-1)).expand_as(probs).masked_fill(probs == 0, -1)
    return torch.minimum(token, kept.max(dim=-1).values)
# replaces: generate
def generate(model, prompt, max_new_tokens, noise=None, temperature=1.0, top_k=None, top_p=None, use_cache=True):
    with torch.no_grad():
        cache = model.new_cache() if use_cache else None
        new = []
        position = 0
        step_input = prompt
        for t in range(max_new_tokens):
            if use_cache:
                logits = model(step_input, cache, start=position)[:, -1]
                position += step_input.size(1)
            else:
                logits = model(torch.cat([prompt] + new, dim=1))[:, -1]
            if noise is None:
                token = torch.argmax(logits, dim=-1, keepdim=True)
            else:
                token = sample_next(logits, noise[:, t], temperature, top_k, top_p).unsqueeze(-1)
            new.append(token)
            step_input = token
        if use_cache and max_new_tokens:
            model(step_input, cache, start=position)  # one more position than needed: allowed
        return torch.cat([prompt] + new, dim=1)
