# fails: test_fixed_multihead
# Heads made of every h-th feature instead of contiguous slices: a fine model, not the contract.
# replaces: fixed_multihead
class MultiHeadAttention(MultiHeadAttentionV1):
    def forward(self, query, key, value, mask=None):
        B, Lq, _ = query.shape
        q, k, v = (layer(t).view(t.size(0), t.size(1), self.d_head, self.num_heads).permute(0, 3, 1, 2)
                   for layer, t in ((self.w_q, query), (self.w_k, key), (self.w_v, value)))
        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h, Lq, d_head)
        return self.w_o(out.permute(0, 2, 3, 1).reshape(B, Lq, self.d_model)), weights
