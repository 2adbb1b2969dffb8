# fails:
# Another right answer: one head at a time, each from its slice of the projected inputs.
# replaces: fixed_multihead
class MultiHeadAttention(MultiHeadAttentionV1):
    def forward(self, query, key, value, mask=None):
        q, k, v = self.w_q(query), self.w_k(key), self.w_v(value)
        outputs, maps = [], []
        for i in range(self.num_heads):
            part = slice(i * self.d_head, (i + 1) * self.d_head)
            head_mask = None if mask is None else (mask if mask.dim() < 4 else mask[:, min(i, mask.size(1) - 1)])
            out, weights = scaled_dot_product_attention(q[..., part], k[..., part], v[..., part], head_mask)
            outputs.append(out)
            maps.append(weights)
        return self.w_o(torch.cat(outputs, dim=-1)), torch.stack(maps, dim=1)
