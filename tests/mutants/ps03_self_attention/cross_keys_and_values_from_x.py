# fails: test_cross_attention
# queries, keys and values all from x: self-attention that never reads the memory (a shape error
# when the two lengths differ)
# replaces: cross_attention
class CrossAttention(SelfAttention):
    def forward(self, x, memory, mask=None):
        return scaled_dot_product_attention(self.w_q(x), self.w_k(x), self.w_v(x), mask)
