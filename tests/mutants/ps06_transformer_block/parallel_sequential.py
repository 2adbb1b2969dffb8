# fails: test_parallel_encoder_layer
# the sequential pre-norm layer under the parallel layer's name: the feed-forward network reads the
# attention's output
# appends:
class SequentialUnderParallelName(ParallelEncoderLayer):
    def forward(self, x, mask=None):
        h = self.norm(x)
        out, self.attn_weights = self.self_attn(h, h, h, mask)
        x = x + self.dropout1(out)
        return x + self.dropout2(self.ff(self.norm(x)))


ParallelEncoderLayer = SequentialUnderParallelName
