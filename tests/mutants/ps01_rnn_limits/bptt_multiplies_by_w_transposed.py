# fails: test_state_gradient_norms
# one step back multiplies the gradient row by W_hh^T (the forward direction), not by W_hh
# replaces: state_gradient_norms
def state_gradient_norms(w_hh: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    grad = torch.ones_like(states[:, -1])
    norms = [grad.norm(dim=-1).mean()]
    for t in range(states.size(1) - 1, 0, -1):
        grad = (grad * (1 - states[:, t] ** 2)) @ w_hh.T
        norms.append(grad.norm(dim=-1).mean())
    return torch.stack(norms)
