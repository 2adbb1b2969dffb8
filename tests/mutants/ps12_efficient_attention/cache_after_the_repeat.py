# fails: test_gqa_cache
# repeats each key/value head for its group before the cache: the outputs are right, but the cache
# holds num_heads heads, so grouped-query attention saves no memory at all
# replaces: gqa_answer
class GroupedQueryAttention(MultiHeadAttention):
    def __init__(self, d_model, num_heads, num_kv_heads, dropout=0.0, bias=True, use_sdpa=False, rotary=False):
        super().__init__(d_model, num_heads, dropout=dropout, bias=bias, use_sdpa=use_sdpa, rotary=rotary)
        if num_heads % num_kv_heads:
            raise ValueError("num_kv_heads must divide num_heads")
        self.num_kv_heads = num_kv_heads
        self.w_k = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)
        self.w_v = nn.Linear(d_model, num_kv_heads * self.d_head, bias=bias)

    def split_heads(self, x):
        B, L, n = x.shape
        heads = x.view(B, L, n // self.d_head, self.d_head).transpose(1, 2)
        return heads.repeat_interleave(self.num_heads // heads.size(1), dim=1)  # queries: a group of 1
