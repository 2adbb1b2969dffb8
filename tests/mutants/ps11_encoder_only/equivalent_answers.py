# fails:
# NOT a bug: other correct ways must score full marks: the masking with a Python loop over the rows and
# torch.topk, the loss as log_softmax gathered at the labels, and the head with a masked sum and a
# boolean index
# replaces: mlm_mask_answer
def mlm_mask(tokens, noise, mask_id, vocab_size, special_ids, first_ordinary, rate=0.15):
    inputs, labels = tokens.clone(), torch.full_like(tokens, IGNORE)
    special = torch.tensor(list(special_ids))
    for b in range(tokens.size(0)):
        maskable = (~torch.isin(tokens[b], special)).nonzero().flatten()
        k = round(rate * len(maskable))
        if k == 0:
            continue
        picked = maskable[torch.topk(noise[b, maskable, 0], k, largest=False).indices]
        labels[b, picked] = tokens[b, picked]
        u = noise[b, picked, 1]
        as_mask, as_random = picked[u < 0.8], picked[(u >= 0.8) & (u < 0.9)]
        inputs[b, as_mask] = mask_id
        inputs[b, as_random] = (first_ordinary + (noise[b, as_random, 2] * (vocab_size - first_ordinary)).floor()).long()
    return inputs, labels
# replaces: mlm_loss_answer
def mlm_loss(logits, labels):
    keep = labels != IGNORE
    log_p = logits.log_softmax(-1)[keep]  # (n_chosen, V)
    return -log_p.gather(-1, labels[keep].unsqueeze(-1)).mean()
# replaces: classification_head_answer
class ClassificationHead(nn.Module):
    def __init__(self, d_model, num_classes, pooling="first", pad_id=0, dropout=0.0):
        super().__init__()
        if pooling not in {"first", "mean"}:
            raise ValueError("pooling is 'first' or 'mean'")
        self.pooling = pooling
        self.pad_id = pad_id
        self.dropout = nn.Dropout(p=dropout)
        self.linear = nn.Linear(d_model, num_classes)

    def pool(self, hidden, tokens):
        if self.pooling == "first":
            return hidden[:, 0, :]
        real = tokens != self.pad_id  # (B, L)
        sums = torch.einsum("bld,bl->bd", hidden, real.to(hidden.dtype))
        return sums / real.sum(dim=1, keepdim=True).clamp(min=1).to(hidden.dtype)

    def forward(self, hidden, tokens):
        return self.linear(self.dropout(self.pool(hidden, tokens)))
