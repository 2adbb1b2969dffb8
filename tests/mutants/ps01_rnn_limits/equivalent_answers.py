# fails:
# other right answers: torch.autograd.grad instead of backward, the loss read from the final state,
# a loop for steps_to_fade, the Jacobians of back-propagation by hand built as full matrices,
# and the prediction in capitals with spaces around it
# replaces: gradient_norm
def gradient_norm_by_distance(rnn, inputs):
    x = inputs.detach().requires_grad_(True)
    _, state = rnn(x)
    h_last = state[0] if isinstance(state, tuple) else state  # (layers, B, H); LSTM: (h, c)
    (grad,) = torch.autograd.grad(h_last[-1].sum(), x)
    return torch.stack([grad[:, t].norm(dim=-1).mean() for t in reversed(range(x.size(1)))])

# replaces: steps_to_fade_answer
def steps_to_fade(rho, factor):
    d, ratio = 0, 1.0
    while ratio > factor:
        d, ratio = d + 1, ratio * rho
    return d

# replaces: large_inputs_answer
large_inputs_effect = "  Fade "

# replaces: state_gradient_norms
def state_gradient_norms(w_hh, states):
    B, T, H = states.shape
    jacobian = torch.eye(H, dtype=states.dtype).expand(B, H, H)  # d h_T / d h_T, (B, H, H)
    norms = []
    for t in range(T - 1, -1, -1):
        norms.append(jacobian.sum(1).norm(dim=-1).mean())  # gradient of sum_j h_T,j: the column sums
        # d h_T / d h_(t-1) = (d h_T / d h_t) diag(1 - h_t^2) W_hh
        jacobian = jacobian @ (torch.diag_embed(1 - states[:, t] ** 2) @ w_hh)
    return torch.stack(norms)
