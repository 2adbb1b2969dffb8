# fails: test_cross_attention test_causal_order
# keys from the memory but values from x; predicts that a causal mask keeps self-attention
# indifferent to order
# replaces: cross_attention
class CrossAttention(SelfAttention):
    def forward(self, x, memory, mask=None):
        return scaled_dot_product_attention(self.w_q(x), self.w_k(memory), self.w_v(x), mask)

# replaces: order_answers
memory_order_effect = "unchanged"
causal_order_effect = "permuted the same way"
