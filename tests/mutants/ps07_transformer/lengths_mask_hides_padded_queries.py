# fails: test_causal_lengths_mask
# masks the padded queries as well as the padded keys: their rows are all False
# replaces: causal_lengths_mask
def causal_lengths_mask(lengths, length):
    real = torch.arange(length)[None, :] < lengths[:, None]  # (B, L)
    return causal_mask(length) & real[:, None, None, :] & real[:, None, :, None]
