# fails: test_generate_cached
# with use_cache=True it makes a cache but never passes it: every step runs the whole sequence again.
# The tokens are right; the model processes P + (P + 1) + ... positions instead of P + new - 1
# replaces: generate
@torch.no_grad()
def generate(model, prompt, max_new_tokens, noise=None, temperature=1.0, top_k=None, top_p=None, use_cache=True):
    cache = model.new_cache() if use_cache else None
    out = prompt
    for t in range(max_new_tokens):
        logits = model(out)[:, -1]  # BUG: the cache is never used
        token = logits.argmax(-1) if noise is None else sample_next(logits, noise[:, t], temperature, top_k, top_p)
        out = torch.cat([out, token[:, None]], dim=1)
    return out
