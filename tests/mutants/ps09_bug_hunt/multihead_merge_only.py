# fails: test_fixed_multihead
# The merge fixed, the heads still cut from the raw inputs (the published tutorial's bug).
# replaces: fixed_multihead
class MultiHeadAttention(MultiHeadAttentionV1):
    def forward(self, query, key, value, mask=None):
        heads = [torch.stack(t.chunk(self.num_heads, dim=-1), dim=1) for t in (query, key, value)]
        out, weights = scaled_dot_product_attention(heads[0], heads[1], heads[2], mask)
        return self.w_o(torch.cat(out.unbind(1), dim=-1)), weights
