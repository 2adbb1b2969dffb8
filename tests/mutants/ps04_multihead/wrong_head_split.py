# replaces: multihead_attention
# fails: test_mha_split_merge test_mha_self_attention test_mha_cross_attention test_mha_mask
# bugs.py: mha_wrong_head_split (view(B, h, L, d_head) without the transpose mixes positions)
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0, bias=True, use_sdpa=False, rotary=False):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.d_model, self.num_heads, self.d_head, self.dropout = d_model, num_heads, d_model // num_heads, dropout
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def split_heads(self, x):
        B, L, _ = x.shape
        return x.view(B, self.num_heads, L, self.d_head)

    def merge_heads(self, x):
        B, _, L, _ = x.shape
        return x.transpose(1, 2).contiguous().view(B, L, self.d_model)

    def forward(self, query, key, value, mask=None):
        q = self.split_heads(self.w_q(query))
        k = self.split_heads(self.w_k(key))
        v = self.split_heads(self.w_v(value))
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        return self.w_o(self.merge_heads(out)), weights
