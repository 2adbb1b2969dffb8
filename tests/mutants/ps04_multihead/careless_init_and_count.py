# fails: test_mha_init test_mha_parameters test_mha_parameter_count
# three independent slips in one notebook (each fails only its own check):
# no ValueError for d_model % num_heads != 0, bias=False ignored, and the biases left out of the count
# replaces: multihead_attention
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0, bias=True, use_sdpa=False, rotary=False):
        super().__init__()
        self.d_model, self.num_heads, self.d_head, self.dropout = d_model, num_heads, d_model // num_heads, dropout
        self.w_q = nn.Linear(d_model, d_model, bias=True)
        self.w_k = nn.Linear(d_model, d_model, bias=True)
        self.w_v = nn.Linear(d_model, d_model, bias=True)
        self.w_o = nn.Linear(d_model, d_model, bias=True)

    def split_heads(self, x):
        B, L, _ = x.shape
        return x.view(B, L, self.num_heads, self.d_head).transpose(1, 2)

    def merge_heads(self, x):
        B, _, L, _ = x.shape
        return x.transpose(1, 2).contiguous().view(B, L, self.d_model)

    def forward(self, query, key, value, mask=None):
        q = self.split_heads(self.w_q(query))
        k = self.split_heads(self.w_k(key))
        v = self.split_heads(self.w_v(value))
        out, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout if self.training else 0.0)
        return self.w_o(self.merge_heads(out)), weights
# replaces: mha_parameters_answer
mha_base_parameters = 4 * 512 * 512
