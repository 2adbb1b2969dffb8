# fails: test_label_smoothing test_train_step
# replaces: label_smoothing
def label_smoothed_cross_entropy(logits, target, pad_id, smoothing=0.0):
    log_probs = torch.log_softmax(logits, dim=-1)
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    loss = (1.0 - smoothing) * nll + smoothing * -log_probs.mean(-1)
    return loss.mean()  # padding positions count as predictions
