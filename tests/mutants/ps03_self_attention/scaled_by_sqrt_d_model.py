# fails: test_self_attention_values test_self_attention_mask
# scales the scores by sqrt(d_model), the width of x, instead of sqrt(d_k), the width of the projected
# queries and keys
# replaces: self_attention
class SelfAttention(nn.Module):
    def __init__(self, d_model, d_k, d_v=None):
        super().__init__()
        d_v = d_k if d_v is None else d_v
        self.w_q = nn.Linear(d_model, d_k, bias=False)
        self.w_k = nn.Linear(d_model, d_k, bias=False)
        self.w_v = nn.Linear(d_model, d_v, bias=False)

    def forward(self, x, mask=None):
        q, k, v = self.w_q(x), self.w_k(x), self.w_v(x)
        weights = masked_softmax(q @ k.transpose(-2, -1) / math.sqrt(x.size(-1)), mask)
        return weights @ v, weights
