# fails: test_self_attention_parameters test_memory_order
# three d_model x d_k matrices whatever d_v is; thinks shuffling the memory shuffles the output
# (confusing it with chapter 3's shuffle of x)
# replaces: self_attention_parameters_answer
def self_attention_parameters(d_model, d_k, d_v=None):
    return 3 * d_model * d_k

# replaces: order_answers
memory_order_effect = "permuted the same way"
causal_order_effect = "changed otherwise"
