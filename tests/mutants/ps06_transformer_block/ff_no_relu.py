# fails: test_feed_forward test_encoder_post_norm test_encoder_pre_norm test_decoder_post_norm test_decoder_pre_norm test_parallel_encoder_layer
# a seed bug: the feed-forward network without its ReLU (two linear maps collapse to one)
# replaces: feed_forward
class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.w_2(self.dropout(self.w_1(x)))  # no ReLU: two linear maps are one linear map
