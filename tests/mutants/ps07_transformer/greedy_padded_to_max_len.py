# fails:
# another right answer: always max_len steps (no early stop), rows that are done padded, so the output
# is (B, max_len); the grader compares up to trailing padding
# replaces: greedy_decode
@torch.no_grad()
def greedy_decode(model, src, bos_id, eos_id, max_len, use_cache=False):
    model.eval()
    memory = model.encode(src)
    ys = torch.full((src.size(0), 1), bos_id, dtype=torch.long)
    done = torch.zeros(src.size(0), dtype=torch.bool)
    for _ in range(max_len):
        next_token = model.decode(ys, memory, src)[:, -1].argmax(-1).masked_fill(done, model.config.pad_id)
        ys = torch.cat([ys, next_token[:, None]], dim=1)
        done |= next_token == eos_id
    return ys[:, 1:]
