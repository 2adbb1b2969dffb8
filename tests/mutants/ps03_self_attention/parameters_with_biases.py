# fails: test_self_attention_parameters
# counts a bias for each projection: nn.Linear's default, but these projections are bias-free
# replaces: self_attention_parameters_answer
def self_attention_parameters(d_model, d_k, d_v=None):
    d_v = d_k if d_v is None else d_v
    return (d_model + 1) * d_k * 2 + (d_model + 1) * d_v
