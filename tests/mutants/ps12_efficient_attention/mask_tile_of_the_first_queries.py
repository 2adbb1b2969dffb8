# fails: test_tiled_masks
# cuts every tile's mask from the rows of the first block of queries: right for a padding mask (the
# same for every query), wrong for a causal one, where each query has its own allowed keys
# replaces: tiled_attention_answer
def tiled_attention(query, key, value, mask=None, block_q=64, block_k=64):
    d_k, Lq, Lk = query.size(-1), query.size(-2), key.size(-2)
    batch = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    if mask is not None:
        mask = mask.expand(*batch, Lq, Lk)
    outputs = []
    for q0 in range(0, Lq, block_q):
        q = query[..., q0:q0 + block_q, :] / math.sqrt(d_k)
        bq = q.size(-2)
        m = torch.full((*batch, bq), float("-inf"), dtype=query.dtype)
        s = torch.zeros((*batch, bq), dtype=query.dtype)
        acc = torch.zeros((*batch, bq, value.size(-1)), dtype=query.dtype)
        for k0 in range(0, Lk, block_k):
            scores = q @ key[..., k0:k0 + block_k, :].transpose(-2, -1)
            tile = None if mask is None else mask[..., :bq, k0:k0 + block_k]
            m, s, acc = online_softmax_update(m, s, acc, scores, value[..., k0:k0 + block_k, :], tile)
        outputs.append(acc / torch.where(s == 0, torch.ones_like(s), s).unsqueeze(-1))
    return torch.cat(outputs, dim=-2)
