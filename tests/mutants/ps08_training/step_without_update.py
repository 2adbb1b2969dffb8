# fails: test_train_step test_training_run
# replaces: train_step
def train_step(model, optimizer, scheduler, src, tgt, pad_id, smoothing=0.0, clip=1.0):
    model.train()
    logits = model(src, tgt[:, :-1])
    loss = label_smoothed_cross_entropy(logits, tgt[:, 1:], pad_id, smoothing)
    optimizer.zero_grad()
    loss.backward()
    scheduler.step()  # optimizer.step() forgotten: nothing learns
    return loss.item()
