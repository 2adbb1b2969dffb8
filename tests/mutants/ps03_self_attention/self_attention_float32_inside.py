# fails: test_self_attention_values test_self_attention_mask
# computes in float32 and casts back: float64 results with float32 accuracy
# replaces: self_attention
class SelfAttention(nn.Module):
    def __init__(self, d_model, d_k, d_v=None):
        super().__init__()
        d_v = d_k if d_v is None else d_v
        self.w_q = nn.Linear(d_model, d_k, bias=False)
        self.w_k = nn.Linear(d_model, d_k, bias=False)
        self.w_v = nn.Linear(d_model, d_v, bias=False)

    def forward(self, x, mask=None):
        w = {name: p.float() for name, p in self.named_parameters()}
        xf = x.float()
        q, k, v = xf @ w["w_q.weight"].T, xf @ w["w_k.weight"].T, xf @ w["w_v.weight"].T
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        return out.to(x.dtype), weights.to(x.dtype)
