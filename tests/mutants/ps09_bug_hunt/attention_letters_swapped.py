# fails: test_attention_diagnosis
# replaces: attention_answers
nan_snippet = "b"
row_sum_snippet = "a"
hidden_keys_snippet = "c"
row_sum = attention_b(query, key, value, mask)[1][0, 0].sum().item()
