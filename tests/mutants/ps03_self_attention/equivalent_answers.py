# fails:
# other right answers: projections written with F.linear and attention with einsum, additive scores
# with einsum, cross-attention as a module of its own with the same parameter names, the count
# written as one product, answers with other capitals and spaces
# replaces: self_attention
class SelfAttention(nn.Module):
    def __init__(self, d_model, d_k, d_v=None):
        super().__init__()
        self.w_q = nn.Linear(d_model, d_k, bias=False)
        self.w_k = nn.Linear(d_model, d_k, bias=False)
        self.w_v = nn.Linear(d_model, d_v or d_k, bias=False)

    def forward(self, x, mask=None):
        q = torch.nn.functional.linear(x, self.w_q.weight)
        k = torch.nn.functional.linear(x, self.w_k.weight)
        v = torch.nn.functional.linear(x, self.w_v.weight)
        weights = masked_softmax(torch.einsum("bid,bjd->bij", q, k) / q.shape[-1] ** 0.5, mask)
        return torch.einsum("bij,bjd->bid", weights, v), weights

# replaces: additive_attention
class AdditiveAttention(nn.Module):
    def __init__(self, query_dim, key_dim, hidden_dim):
        super().__init__()
        self.w_q = nn.Linear(query_dim, hidden_dim, bias=False)
        self.w_k = nn.Linear(key_dim, hidden_dim, bias=False)
        self.v = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, query, key, value, mask=None):
        hidden = torch.tanh(self.w_q(query)[:, :, None, :] + self.w_k(key)[:, None, :, :])  # (B, Lq, Lk, H)
        scores = torch.einsum("bqkh,h->bqk", hidden, self.v.weight[0])
        weights = masked_softmax(scores, mask)
        return weights @ value, weights

# replaces: self_attention_parameters_answer
def self_attention_parameters(d_model, d_k, d_v=None):
    return d_model * (2 * d_k + (d_k if d_v is None else d_v))

# replaces: cross_attention
class CrossAttention(nn.Module):
    def __init__(self, d_model, d_k, d_v=None):
        super().__init__()
        self.w_q = nn.Linear(d_model, d_k, bias=False)
        self.w_k = nn.Linear(d_model, d_k, bias=False)
        self.w_v = nn.Linear(d_model, d_k if d_v is None else d_v, bias=False)

    def forward(self, x, memory, mask=None):
        return scaled_dot_product_attention(self.w_q(x), self.w_k(memory), self.w_v(memory), mask)

# replaces: order_answers
memory_order_effect = "Unchanged "
causal_order_effect = "changed  otherwise"
