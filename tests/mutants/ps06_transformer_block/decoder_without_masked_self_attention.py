# fails: test_decoder_post_norm test_decoder_pre_norm
# a seed bug: the decoder layer has no masked self-attention, it goes straight to cross-attention
# appends:
class DecoderWithoutSelfAttention(DecoderLayer):
    def forward(self, x, memory, self_mask=None, memory_mask=None):
        if self.norm_first:
            x = x + self._ca(self.norm2(x), memory, memory_mask)
            return x + self.dropout3(self.ff(self.norm3(x)))
        x = self.norm2(x + self._ca(x, memory, memory_mask))
        return self.norm3(x + self.dropout3(self.ff(x)))


DecoderLayer = DecoderWithoutSelfAttention
