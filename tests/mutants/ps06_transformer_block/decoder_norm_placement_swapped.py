# fails: test_decoder_post_norm test_decoder_pre_norm
# appends:
class DecoderNormSwapped(DecoderLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm_first = not self.norm_first  # pre-norm where post-norm was asked for, and the other way


DecoderLayer = DecoderNormSwapped
