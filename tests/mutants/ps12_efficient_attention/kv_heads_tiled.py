# fails: test_gqa_grouping test_gqa_cache
# Tensor.repeat instead of repeat_interleave: the list of key/value heads is tiled, so query head i uses
# key/value head i % num_kv_heads (the same as grouping when num_kv_heads is 1 or num_heads; the cache check
# uses 2 of 6 heads too)
# replaces: gqa_answer
class GroupedQueryAttention(MultiHeadAttention):
    def __init__(self, d_model, num_heads, num_kv_heads, dropout=0.0, bias=True, use_sdpa=False, rotary=False):
        super().__init__(d_model, num_heads, dropout=dropout, bias=bias, use_sdpa=use_sdpa, rotary=rotary)
        if num_heads % num_kv_heads:
            raise ValueError("num_kv_heads must divide num_heads")
        self.num_kv_heads = num_kv_heads
        self.w_k = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)
        self.w_v = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)

    def forward(self, query, key, value, mask=None, cache=None):
        B, Lq, Lk = query.size(0), query.size(1), key.size(1)
        q = self.w_q(query).view(B, Lq, self.num_heads, self.d_head).transpose(1, 2)
        k = self.w_k(key).view(B, Lk, self.num_kv_heads, self.d_head).transpose(1, 2)
        v = self.w_v(value).view(B, Lk, self.num_kv_heads, self.d_head).transpose(1, 2)
        if self.rotary:
            start = 0 if cache is None else cache.length
            q = apply_rotary(q, torch.arange(start, start + Lq))
            k = apply_rotary(k, torch.arange(start, start + Lk))
        if cache is not None:
            k, v = cache.update(k, v)
        group = self.num_heads // self.num_kv_heads
        k, v = k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)
        out, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout if self.training else 0.0)
        return self.w_o(out.transpose(1, 2).reshape(B, Lq, self.d_model)), weights
