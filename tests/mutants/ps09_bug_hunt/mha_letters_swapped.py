# fails: test_mha_diagnosis
# replaces: mha_answers
crash_snippet = "a"
unused_weight_snippet = "b"
heads = heads_b(16, 4).double()
heads.load_state_dict(correct.state_dict())
head_split_difference = (heads(x, x, x)[0] - out_correct).abs().max().item()
