# fails: test_packed_self_attention
# reads w_qkv as one [q, k, v] block per head (Megatron-LM's layout), not [all queries; all keys; all values]
# replaces: packed_self_attention
class PackedSelfAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        self.d_model, self.num_heads, self.d_head = d_model, num_heads, d_model // num_heads
        self.w_qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x, mask=None):
        B, L, _ = x.shape
        qkv = self.w_qkv(x).view(B, L, self.num_heads, 3 * self.d_head).transpose(1, 2)  # (B, h, L, 3 d_head)
        q, k, v = qkv.chunk(3, dim=-1)
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        return self.w_o(out.transpose(1, 2).reshape(B, L, self.d_model)), weights
