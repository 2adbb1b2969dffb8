# fails: test_train_step test_training_run
# The seeds' bug, made to run: the decoder reads the encoder's output (one row per source position)
# and the targets are cut to that length. The loss falls, but the decoder never learned to read tokens,
# so greedy decoding (which feeds it tokens) fails.
# replaces: train_step
def train_step(model, optimizer, scheduler, src, tgt, pad_id, smoothing=0.0, clip=1.0):
    model.train()
    memory = model.encode(src)  # (B, S, d_model)
    source_mask = padding_mask(src, pad_id)
    x = memory
    for layer in model.decoder_layers:
        x = layer(x, memory, source_mask, source_mask)
    logits = model.generator(model.decoder_norm(x))  # (B, S, V)
    target = tgt[:, 1:1 + logits.size(1)]  # cut to fit
    loss = label_smoothed_cross_entropy(logits[:, :target.size(1)], target, pad_id, smoothing)
    optimizer.zero_grad()
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    scheduler.step()
    return loss.item()
