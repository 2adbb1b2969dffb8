# fails:
# NOT a bug: other correct ways must score full marks: heads in a Python loop over weight slices with
# nn.Dropout as a module, FLOPs summed term by term, packed attention with chunk and einsum
# replaces: multihead_attention
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0, bias=True, use_sdpa=False, rotary=False):
        super().__init__()
        if d_model % num_heads:
            raise ValueError("num_heads must divide d_model")
        self.d_model, self.num_heads, self.d_head, self.dropout = d_model, num_heads, d_model // num_heads, dropout
        self.w_q, self.w_k, self.w_v, self.w_o = (nn.Linear(d_model, d_model, bias=bias) for _ in range(4))
        self.drop = nn.Dropout(dropout)

    def split_heads(self, x):
        return torch.stack(x.split(self.d_head, dim=-1), dim=1)  # (B, h, L, d_head)

    def merge_heads(self, x):
        return torch.cat(x.unbind(dim=1), dim=-1)  # (B, L, d_model)

    def forward(self, query, key, value, mask=None, cache=None):
        q, k, v = self.w_q(query), self.w_k(key), self.w_v(value)
        outs, all_weights = [], []
        for i in range(self.num_heads):
            cols = slice(i * self.d_head, (i + 1) * self.d_head)
            scores = torch.einsum("bqd,bkd->bqk", q[..., cols], k[..., cols]) / self.d_head ** 0.5
            head_mask = None
            if mask is not None:
                m = mask
                while m.dim() < 4:
                    m = m.unsqueeze(0)
                head_mask = m[:, min(i, m.size(1) - 1)]
            weights = masked_softmax(scores, head_mask)
            outs.append(self.drop(weights) @ v[..., cols])
            all_weights.append(weights)
        return self.w_o(torch.cat(outs, dim=-1)), torch.stack(all_weights, dim=1)
# replaces: mha_flops_answer
def mha_flops(d_model, num_heads, len_q, len_k):
    d_head = d_model // num_heads
    q, o = 2 * len_q * d_model * d_model, 2 * len_q * d_model * d_model
    k = v = 2 * len_k * d_model * d_model
    per_head = 2 * len_q * len_k * d_head * 2
    return q + k + v + o + num_heads * per_head
# replaces: packed_self_attention
class PackedSelfAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        self.num_heads = num_heads
        self.w_qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x, mask=None):
        B, L, d = x.shape
        h = self.num_heads
        qkv = self.w_qkv(x).view(B, L, 3, h, d // h)  # (B, L, [q k v], h, d_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, h, L, d_head)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(d // h)
        weights = masked_softmax(scores, mask)
        out = torch.einsum("bhqk,bhkd->bqhd", weights, v).reshape(B, L, d)
        return self.w_o(out), weights
