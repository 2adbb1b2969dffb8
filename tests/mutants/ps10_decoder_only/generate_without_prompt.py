# fails: test_generate test_generate_cached
# returns only the new tokens: the contract keeps the prompt in front of them
# replaces: generate
@torch.no_grad()
def generate(model, prompt, max_new_tokens, noise=None, temperature=1.0, top_k=None, top_p=None, use_cache=True):
    cache = model.new_cache() if use_cache else None
    out = prompt
    logits = model(prompt, cache)[:, -1]
    for t in range(max_new_tokens):
        token = logits.argmax(-1) if noise is None else sample_next(logits, noise[:, t], temperature, top_k, top_p)
        out = torch.cat([out, token[:, None]], dim=1)
        if t + 1 < max_new_tokens:
            logits = (model(token[:, None], cache, start=out.size(1) - 1) if use_cache else model(out))[:, -1]
    return out[:, prompt.size(1):]  # BUG: without the prompt
