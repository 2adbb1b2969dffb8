# fails: test_rmsnorm
# believes RMSNorm is LayerNorm without the bias: it still subtracts each vector's mean
# replaces: rmsnorm
class RMSNorm(nn.Module):
    def __init__(self, d_model, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x):
        x = x - x.mean(dim=-1, keepdim=True)  # re-centring: what RMSNorm drops
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight
