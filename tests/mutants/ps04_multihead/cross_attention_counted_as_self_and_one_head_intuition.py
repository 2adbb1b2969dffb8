# fails: test_mha_flops test_mha_unchanged
# the FLOPs of self-attention over len_q tokens (the keys and values also counted over len_q), and the
# belief that the number of heads only reshapes, so that one head with the same weights computes the same
# replaces: mha_flops_answer
def mha_flops(d_model, num_heads, len_q, len_k):
    return 8 * len_q * d_model**2 + 4 * len_q**2 * d_model
# replaces: output_unchanged_answer
output_unchanged = {"one_head": True, "swap_heads": True, "swap_heads_qk": False, "shuffle_within_heads": True,
                    "q_times_2_k_half": True, "q_and_k_times_2": False}
