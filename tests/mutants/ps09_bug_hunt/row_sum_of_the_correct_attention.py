# fails: test_attention_row_sum
# replaces: attention_answers
nan_snippet = "a"
row_sum_snippet = "b"
hidden_keys_snippet = "c"
row_sum = weights_ref[0, 0].sum().item()  # 1.0: measured on the correct function
