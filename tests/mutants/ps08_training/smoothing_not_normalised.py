# fails: test_label_smoothing test_train_step test_training_run
# replaces: label_smoothing
def label_smoothed_cross_entropy(logits, target, pad_id, smoothing=0.0):
    log_probs = torch.log_softmax(logits, dim=-1)
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    loss = nll + smoothing * -log_probs.sum(-1)  # q sums to more than 1: eps on every class, 1 on the target
    keep = target != pad_id
    return loss[keep].mean()
