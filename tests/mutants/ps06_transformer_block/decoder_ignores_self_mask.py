# fails: test_decoder_post_norm test_decoder_pre_norm
# appends:
class DecoderIgnoresSelfMask(DecoderLayer):
    def forward(self, x, memory, self_mask=None, memory_mask=None):
        return super().forward(x, memory, None, memory_mask)  # every position sees the future


DecoderLayer = DecoderIgnoresSelfMask
