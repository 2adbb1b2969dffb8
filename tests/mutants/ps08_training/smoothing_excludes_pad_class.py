# fails: test_label_smoothing test_train_step
# replaces: label_smoothing
def label_smoothed_cross_entropy(logits, target, pad_id, smoothing=0.0):
    # The Annotated Transformer's variant: eps / (V - 2) on every class except the target and padding.
    # A fine loss, but not the one of F.cross_entropy and the course's loop.
    log_probs = torch.log_softmax(logits, dim=-1)
    V = logits.size(-1)
    q = torch.full_like(log_probs, smoothing / (V - 2))
    q.scatter_(-1, target.unsqueeze(-1), 1.0 - smoothing)
    q[..., pad_id] = 0.0
    loss = -(q * log_probs).sum(-1)
    keep = target != pad_id
    return loss[keep].mean()
