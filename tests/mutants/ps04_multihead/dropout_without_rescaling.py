# fails: test_mha_dropout
# drops attention weights by hand in training mode but does not scale the kept ones by 1 / (1 - p):
# the output shrinks on average in training, and the model sees other magnitudes at inference
# replaces: multihead_attention
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
        return x.view(B, L, self.num_heads, self.d_head).transpose(1, 2)

    def merge_heads(self, x):
        B, _, L, _ = x.shape
        return x.transpose(1, 2).contiguous().view(B, L, self.d_model)

    def forward(self, query, key, value, mask=None, cache=None):
        q = self.split_heads(self.w_q(query))
        k = self.split_heads(self.w_k(key))
        v = self.split_heads(self.w_v(value))
        weights = masked_softmax(q @ k.transpose(-2, -1) / math.sqrt(self.d_head), mask)
        used = weights
        if self.training and self.dropout > 0:
            used = weights * (torch.rand_like(weights) >= self.dropout)  # no 1 / (1 - p)
        return self.w_o(self.merge_heads(used @ v)), weights
