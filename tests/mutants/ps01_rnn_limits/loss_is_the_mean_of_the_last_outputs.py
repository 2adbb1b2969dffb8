# fails: test_gradient_norm_values
# the loss is the mean of the last step's outputs instead of their sum: every norm is divided by the
# hidden size, so the ratios of section 2 are still right and only the values check sees it
# replaces: gradient_norm
def gradient_norm_by_distance(rnn: nn.RNNBase, inputs: torch.Tensor) -> torch.Tensor:
    x = inputs.detach().clone().requires_grad_(True)
    out, _ = rnn(x)  # (B, T, H)
    out[:, -1].mean(-1).sum().backward()
    norms = x.grad.norm(dim=-1).mean(0)  # (T,)
    return norms.flip(0)
