# fails: test_mlm_mask_positions
# chooses round(0.15 x L) positions among all L positions of a row, padding and [CLS] included: the
# model is then asked to predict padding, and short sequences lose most of their masked tokens
# replaces: mlm_mask_answer
def mlm_mask(tokens, noise, mask_id, vocab_size, special_ids, first_ordinary, rate=0.15):
    B, L = tokens.shape
    count = round(rate * L)
    rank = noise[..., 0].argsort(dim=1).argsort(dim=1)
    chosen = rank < count
    u = noise[..., 1]
    random_tokens = first_ordinary + torch.floor(noise[..., 2] * (vocab_size - first_ordinary)).long()
    inputs = torch.where(chosen & (u < 0.8), torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_tokens, inputs)
    labels = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels
