# fails: test_self_attention_values test_self_attention_mask test_additive_parameter_count
# bugs.py: sdpa_no_scaling written inside self-attention; the parameter count forgets the vector v
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
        weights = masked_softmax(q @ k.transpose(-2, -1), mask)  # no / sqrt(d_k)
        return weights @ v, weights

# replaces: additive_parameters_answer
additive_parameters = 32 * 64 + 48 * 64

