# fails: test_decoder_post_norm test_decoder_pre_norm
# appends:
class DecoderIgnoresMemoryMask(DecoderLayer):
    def forward(self, x, memory, self_mask=None, memory_mask=None):
        return super().forward(x, memory, self_mask, None)  # attends to source padding


DecoderLayer = DecoderIgnoresMemoryMask
