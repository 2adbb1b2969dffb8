# fails: test_state_gradient_norms
# takes the tanh derivative at the state the step reads, h_(t-1), instead of the one it produces, h_t
# replaces: state_gradient_norms
def state_gradient_norms(w_hh: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    grad = torch.ones_like(states[:, -1])
    norms = [grad.norm(dim=-1).mean()]
    for t in range(states.size(1) - 1, 0, -1):
        grad = (grad * (1 - states[:, t - 1] ** 2)) @ w_hh
        norms.append(grad.norm(dim=-1).mean())
    return torch.stack(norms)
