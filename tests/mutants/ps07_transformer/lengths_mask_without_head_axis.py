# fails: test_causal_lengths_mask
# (B, L, L): against scores (B, h, L, L) it would broadcast B over the heads
# replaces: causal_lengths_mask
def causal_lengths_mask(lengths, length):
    real = torch.arange(length)[None, :] < lengths[:, None]  # (B, L)
    return causal_mask(length) & real[:, None, :]
