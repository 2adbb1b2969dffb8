# fails: test_greedy_decode
# a seed bug: "prediction" with no autoregressive loop: one forward pass over a prefix of BOS tokens,
# then the argmax at every position, so no chosen token is ever fed back
# replaces: greedy_decode
@torch.no_grad()
def greedy_decode(model, src, bos_id, eos_id, max_len, use_cache=False):
    model.eval()
    ys = torch.full((src.size(0), max_len), bos_id, dtype=torch.long)
    tokens = model.decode(ys, model.encode(src), src).argmax(-1)  # (B, max_len) in one pass
    return trim_after_eos(tokens, eos_id, model.config.pad_id)
