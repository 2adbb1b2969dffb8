# fails: test_cross_attention
# never passes the mask on: the memory's padding tokens are attended to
# replaces: cross_attention
class CrossAttention(SelfAttention):
    def forward(self, x, memory, mask=None):
        return scaled_dot_product_attention(self.w_q(x), self.w_k(memory), self.w_v(memory))
