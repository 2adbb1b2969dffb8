# fails: test_greedy_decode
# replaces: greedy_decode
@torch.no_grad()
def greedy_decode(model, src, bos_id, eos_id, max_len, use_cache=False):
    model.eval()
    memory = model.encode(src)
    ys = torch.full((src.size(0), 1), bos_id, dtype=torch.long)
    for _ in range(max_len):  # always max_len steps, and tokens after EOS kept
        next_token = model.decode(ys, memory, src)[:, -1].argmax(-1)
        ys = torch.cat([ys, next_token[:, None]], dim=1)
    return ys[:, 1:]
