# fails: test_decoder_post_norm test_decoder_pre_norm
# a seed bug: the cross-attention's residual is added onto the encoder output instead of the decoder's
# stream (it runs only when target and source have the same length)
# appends:
class DecoderResidualOntoMemory(DecoderLayer):
    def forward(self, x, memory, self_mask=None, memory_mask=None):
        if self.norm_first:
            x = x + self._sa(self.norm1(x), self_mask)
            x = memory + self._ca(self.norm2(x), memory, memory_mask)
            return x + self.dropout3(self.ff(self.norm3(x)))
        x = self.norm1(x + self._sa(x, self_mask))
        x = self.norm2(memory + self._ca(x, memory, memory_mask))
        return self.norm3(x + self.dropout3(self.ff(x)))


DecoderLayer = DecoderResidualOntoMemory
