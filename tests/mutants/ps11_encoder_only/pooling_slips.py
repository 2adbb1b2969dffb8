# fails: test_head_first test_head_mean
# two slips of pooling: "first" takes the last position's vector (what a decoder's last token would
# give), and "mean" averages over every position, padding included, so the logits change with padding
# replaces: classification_head_answer
class ClassificationHead(nn.Module):
    def __init__(self, d_model, num_classes, pooling="first", pad_id=0, dropout=0.0):
        super().__init__()
        if pooling not in ("first", "mean"):
            raise ValueError(f"unknown pooling {pooling!r}")
        self.pooling, self.pad_id = pooling, pad_id
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(d_model, num_classes)

    def pool(self, hidden, tokens):
        if self.pooling == "first":
            return hidden[:, -1]
        return hidden.mean(dim=1)

    def forward(self, hidden, tokens):
        return self.linear(self.dropout(self.pool(hidden, tokens)))
