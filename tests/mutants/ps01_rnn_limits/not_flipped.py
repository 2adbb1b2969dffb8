# fails: test_gradient_norm_values test_rnn_ratio test_lstm_open_gate_ratio
# indexes by time step, not by distance: entry 0 is the first step instead of the last
# replaces: gradient_norm
def gradient_norm_by_distance(rnn: nn.RNNBase, inputs: torch.Tensor) -> torch.Tensor:
    x = inputs.detach().clone().requires_grad_(True)
    out, _ = rnn(x)  # (B, T, H)
    out[:, -1].sum().backward()
    norms = x.grad.norm(dim=-1).mean(0)  # (T,)
    return norms

