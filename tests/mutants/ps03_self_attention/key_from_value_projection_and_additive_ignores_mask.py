# fails: test_self_attention_shapes test_self_attention_values test_self_attention_mask test_additive_mask
# bugs.py: K computed with the V projection (k = w_v(x): crashes when d_v != d_k); additive attention never passes the mask on
# replaces: self_attention
class SelfAttention(nn.Module):
    def __init__(self, d_model, d_k, d_v=None):
        super().__init__()
        d_v = d_k if d_v is None else d_v
        self.w_q = nn.Linear(d_model, d_k, bias=False)
        self.w_k = nn.Linear(d_model, d_k, bias=False)
        self.w_v = nn.Linear(d_model, d_v, bias=False)

    def forward(self, x, mask=None):
        q, k, v = self.w_q(x), self.w_v(x), self.w_v(x)
        return scaled_dot_product_attention(q, k, v, mask)

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
        weights = masked_softmax(scores, None)
        return weights @ value, weights

