# fails: test_self_attention_values test_self_attention_mask
# queries and keys swapped: token i is scored with k_i . q_j, so its row of weights is the column of
# another softmax
# replaces: self_attention
class SelfAttention(nn.Module):
    def __init__(self, d_model, d_k, d_v=None):
        super().__init__()
        d_v = d_k if d_v is None else d_v
        self.w_q = nn.Linear(d_model, d_k, bias=False)
        self.w_k = nn.Linear(d_model, d_k, bias=False)
        self.w_v = nn.Linear(d_model, d_v, bias=False)

    def forward(self, x, mask=None):
        return scaled_dot_product_attention(self.w_k(x), self.w_q(x), self.w_v(x), mask)
