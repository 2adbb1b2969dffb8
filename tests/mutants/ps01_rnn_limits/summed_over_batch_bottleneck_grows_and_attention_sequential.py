# fails: test_gradient_norm_values test_bottleneck test_sequential_steps
# sums the norms over the batch instead of averaging (ratios unchanged); thinks the final state grows with the source; counts self-attention as sequential
# replaces: gradient_norm
def gradient_norm_by_distance(rnn: nn.RNNBase, inputs: torch.Tensor) -> torch.Tensor:
    x = inputs.detach().clone().requires_grad_(True)
    out, _ = rnn(x)  # (B, T, H)
    out[:, -1].sum().backward()
    norms = x.grad.norm(dim=-1).sum(0)  # (T,)
    return norms.flip(0)

# replaces: sequential_steps
def sequential_steps(layer, length):
    return length

# replaces: bottleneck
def numbers_about_source(source_length, hidden_size, attention):
    return source_length * hidden_size
