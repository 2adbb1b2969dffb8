# fails: test_mlm_mask_positions
# int(rate * n) truncates instead of rounding: a sequence of 10 maskable tokens gets 1 masked position
# instead of 2, one of 9 gets none
# replaces: mlm_mask_answer
def mlm_mask(tokens, noise, mask_id, vocab_size, special_ids, first_ordinary, rate=0.15):
    inputs, labels = tokens.clone(), torch.full_like(tokens, IGNORE)
    for b in range(tokens.size(0)):
        maskable = [i for i in range(tokens.size(1)) if int(tokens[b, i]) not in special_ids]
        count = int(rate * len(maskable))
        for i in sorted(maskable, key=lambda i: float(noise[b, i, 0]))[:count]:
            labels[b, i] = tokens[b, i]
            u = float(noise[b, i, 1])
            if u < 0.8:
                inputs[b, i] = mask_id
            elif u < 0.9:
                inputs[b, i] = first_ordinary + math.floor(float(noise[b, i, 2]) * (vocab_size - first_ordinary))
    return inputs, labels
