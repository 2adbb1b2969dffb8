# fails: test_state_gradient_norms
# treats the layer as linear: multiplies by W_hh only, forgetting diag(1 - h_t^2)
# replaces: state_gradient_norms
def state_gradient_norms(w_hh: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    grad = torch.ones_like(states[:, -1])
    norms = [grad.norm(dim=-1).mean()]
    for t in range(states.size(1) - 1, 0, -1):
        grad = grad @ w_hh
        norms.append(grad.norm(dim=-1).mean())
    return torch.stack(norms)
