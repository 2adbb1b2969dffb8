# fails: test_mlm_mask_replacements
# every chosen position becomes [MASK] (100 % instead of 80 / 10 / 10): the model never has to predict
# at a position that looks normal, and [MASK] never occurs after pre-training
# replaces: mlm_mask_answer
def mlm_mask(tokens, noise, mask_id, vocab_size, special_ids, first_ordinary, rate=0.15):
    maskable = torch.ones_like(tokens, dtype=torch.bool)
    for special in special_ids:
        maskable &= tokens != special
    count = torch.round(rate * maskable.sum(dim=1).double()).long()
    key = noise[..., 0].masked_fill(~maskable, float("inf"))
    rank = key.argsort(dim=1).argsort(dim=1)
    chosen = (rank < count[:, None]) & maskable
    inputs = torch.where(chosen, torch.full_like(tokens, mask_id), tokens)
    labels = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels
