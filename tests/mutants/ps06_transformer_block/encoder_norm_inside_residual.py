# fails: test_encoder_post_norm
# appends:
class EncoderNormInsideResidual(EncoderLayer):
    def forward(self, x, mask=None):
        if self.norm_first:
            return super().forward(x, mask)
        x = x + self.norm1(self._sa(x, mask))  # post-norm normalises the sum, not the sublayer
        return x + self.norm2(self.dropout2(self.ff(x)))


EncoderLayer = EncoderNormInsideResidual
