# fails: test_mha_head_split_difference
# replaces: mha_answers
crash_snippet = "a"
unused_weight_snippet = "c"
heads = heads_b(16, 4).double()  # forgot load_state_dict: compares two different random initialisations
head_split_difference = (heads(x, x, x)[0] - out_correct).abs().max().item()
