# fails: test_gqa_init test_gqa_equals_mha test_gqa_grouping
# two slips in one class: no ValueError when num_kv_heads does not divide num_heads (the integer division
# silently drops heads), and a forward that passes the base class everything but the mask
# replaces: gqa_answer
class SharedKVHeads:
    def __init__(self, cache, group):
        self.cache, self.group = cache, group

    @property
    def length(self):
        return 0 if self.cache is None else self.cache.length

    def update(self, k, v):
        if self.cache is not None:
            k, v = self.cache.update(k, v)
        return k.repeat_interleave(self.group, dim=1), v.repeat_interleave(self.group, dim=1)


class GroupedQueryAttention(MultiHeadAttention):
    def __init__(self, d_model, num_heads, num_kv_heads, dropout=0.0, bias=True, use_sdpa=False, rotary=False):
        super().__init__(d_model, num_heads, dropout=dropout, bias=bias, use_sdpa=use_sdpa, rotary=rotary)
        self.num_kv_heads = num_kv_heads
        self.w_k = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)
        self.w_v = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)

    def split_heads(self, x):
        B, L, n = x.shape
        return x.view(B, L, n // self.d_head, self.d_head).transpose(1, 2)

    def forward(self, query, key, value, mask=None, cache=None):
        return super().forward(query, key, value, cache=SharedKVHeads(cache, self.num_heads // self.num_kv_heads))
