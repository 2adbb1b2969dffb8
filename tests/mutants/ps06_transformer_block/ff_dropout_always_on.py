# fails: test_feed_forward test_encoder_post_norm test_encoder_pre_norm test_decoder_post_norm test_decoder_pre_norm test_parallel_encoder_layer
# replaces: feed_forward
class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model)
        self.p = dropout

    def forward(self, x):
        return self.w_2(F.dropout(torch.relu(self.w_1(x)), self.p))  # F.dropout trains by default: eval() does not stop it
