# fails:
# NOT a bug: other correct ways must score full marks: the update with torch.where, nan_to_num and einsum;
# tiled attention with the whole mask broadcast first and 0/0 turned into 0 by nan_to_num; grouped-query
# attention written in full, each key/value head expanded over its group with expand + reshape
# replaces: online_softmax_answer
def online_softmax_update(running_max, running_sum, running_out, scores, values, mask=None):
    if mask is not None:
        scores = torch.where(mask, scores, torch.tensor(-math.inf, dtype=scores.dtype))
    new_max = torch.max(running_max, scores.max(dim=-1).values)
    safe = new_max.nan_to_num(neginf=0.0)
    p = (scores - safe[..., None]).exp()
    alpha = (running_max - safe).exp()
    return new_max, alpha * running_sum + p.sum(-1), alpha[..., None] * running_out + torch.einsum("...qk,...kd->...qd", p, values)
# replaces: tiled_attention_answer
def tiled_attention(query, key, value, mask=None, block_q=64, block_k=64):
    scale = query.size(-1) ** -0.5
    Lq, Lk = query.size(-2), key.size(-2)
    lead = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    full_mask = None if mask is None else torch.broadcast_to(mask, (*lead, Lq, Lk))
    blocks = []
    for i in range(0, Lq, block_q):
        qi = query[..., i:i + block_q, :]
        n = qi.size(-2)
        state = (torch.full((*lead, n), -math.inf, dtype=query.dtype), torch.zeros((*lead, n), dtype=query.dtype),
                 torch.zeros((*lead, n, value.size(-1)), dtype=query.dtype))
        for j in range(0, Lk, block_k):
            s = torch.einsum("...qd,...kd->...qk", qi, key[..., j:j + block_k, :]) * scale
            tile = None if full_mask is None else full_mask[..., i:i + block_q, j:j + block_k]
            state = online_softmax_update(*state, s, value[..., j:j + block_k, :], tile)
        blocks.append(torch.nan_to_num(state[2] / state[1][..., None], nan=0.0))
    return torch.cat(blocks, dim=-2)
# replaces: gqa_answer
class GroupedQueryAttention(MultiHeadAttention):
    def __init__(self, d_model, num_heads, num_kv_heads, dropout=0.0, bias=True, use_sdpa=False, rotary=False):
        super().__init__(d_model, num_heads, dropout=dropout, bias=bias, use_sdpa=use_sdpa, rotary=rotary)
        if num_kv_heads < 1 or num_heads % num_kv_heads:
            raise ValueError(f"num_heads ({num_heads}) is not a multiple of num_kv_heads ({num_kv_heads})")
        self.num_kv_heads = num_kv_heads
        self.w_k = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)
        self.w_v = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)

    def forward(self, query, key, value, mask=None, cache=None):
        B, Lq, Lk = query.size(0), query.size(1), key.size(1)
        q = self.split_heads(self.w_q(query))
        k = self.w_k(key).view(B, Lk, self.num_kv_heads, self.d_head).transpose(1, 2)
        v = self.w_v(value).view(B, Lk, self.num_kv_heads, self.d_head).transpose(1, 2)
        if self.rotary:
            start = 0 if cache is None else cache.length
            q = apply_rotary(q, torch.arange(start, start + Lq))
            k = apply_rotary(k, torch.arange(start, start + Lk))
        if cache is not None:
            k, v = cache.update(k, v)
        g = self.num_heads // self.num_kv_heads
        k = k[:, :, None].expand(-1, -1, g, -1, -1).reshape(B, self.num_heads, -1, self.d_head)
        v = v[:, :, None].expand(-1, -1, g, -1, -1).reshape(B, self.num_heads, -1, self.d_head)
        out, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout if self.training else 0.0)
        return self.w_o(self.merge_heads(out)), weights
