# fails: test_rmsnorm
# adds eps to the root instead of under it: x / (rms(x) + eps) (visible with a large eps)
# replaces: rmsnorm
class RMSNorm(nn.Module):
    def __init__(self, d_model, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x):
        return x / (x.pow(2).mean(dim=-1, keepdim=True).sqrt() + self.eps) * self.weight
