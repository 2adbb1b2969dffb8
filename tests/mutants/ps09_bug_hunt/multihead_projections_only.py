# fails: test_fixed_multihead
# The projections added, the merge left as a reshape that mixes positions.
# replaces: fixed_multihead
class MultiHeadAttention(MultiHeadAttentionV1):
    def forward(self, query, key, value, mask=None):
        heads = [torch.stack(layer(t).chunk(self.num_heads, dim=-1), dim=1)
                 for layer, t in ((self.w_q, query), (self.w_k, key), (self.w_v, value))]
        out, weights = scaled_dot_product_attention(heads[0], heads[1], heads[2], mask)
        return self.w_o(out.reshape(query.size(0), query.size(1), self.d_model)), weights
