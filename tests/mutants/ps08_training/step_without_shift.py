# fails: test_train_step test_training_run
# replaces: train_step
def train_step(model, optimizer, scheduler, src, tgt, pad_id, smoothing=0.0, clip=1.0):
    model.train()
    logits = model(src, tgt)  # the decoder reads the very token it must predict
    loss = label_smoothed_cross_entropy(logits, tgt, pad_id, smoothing)
    optimizer.zero_grad()
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    scheduler.step()
    return loss.item()
