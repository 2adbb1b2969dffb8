# fails: test_self_attention_shapes test_self_attention_values test_self_attention_mask test_additive_values test_additive_mask
# returns (weights, output) in the wrong order; bugs.py: softmax over the wrong axis (the queries) in additive attention
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
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        return weights, out

# replaces: additive_attention
class AdditiveAttention(nn.Module):
    """Bahdanau (additive) attention: score(q, k) = v^T tanh(W_q q + W_k k)."""

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int):
        super().__init__()
        self.w_q = nn.Linear(query_dim, hidden_dim, bias=False)
        self.w_k = nn.Linear(key_dim, hidden_dim, bias=False)
        self.v = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, query, key, value, mask=None):
        """query (B, Lq, dq), key (B, Lk, dk), value (B, Lk, dv) -> ((B, Lq, dv), (B, Lq, Lk))."""
        check_mask(mask)
        features = torch.tanh(self.w_q(query).unsqueeze(2) + self.w_k(key).unsqueeze(1))  # (B, Lq, Lk, H)
        scores = self.v(features).squeeze(-1)  # (B, Lq, Lk)
        weights = masked_softmax(scores.transpose(-2, -1), None if mask is None else mask.transpose(-2, -1)).transpose(-2, -1)
        return weights @ value, weights

