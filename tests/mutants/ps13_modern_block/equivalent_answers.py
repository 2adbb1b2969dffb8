# fails:
# other right answers: the RMS from the vector norm, SiLU written as z * sigmoid(z), the slopes as
# powers 2^(-8h/n) computed directly (with the authors' rule for other counts), the bias by
# broadcasting positions with tril, and the count written per module
# replaces: rmsnorm
class RMSNorm(nn.Module):
    def __init__(self, d_model, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.d_model = d_model
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x):
        rms = torch.sqrt(torch.linalg.vector_norm(x, dim=-1, keepdim=True) ** 2 / self.d_model + self.eps)
        return self.weight * (x / rms)

# replaces: swiglu
class SwiGLU(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff, bias=False)
        self.w_2 = nn.Linear(d_ff, d_model, bias=False)
        self.w_3 = nn.Linear(d_model, d_ff, bias=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        gate = self.w_1(x)
        return self.w_2(self.drop(gate * torch.sigmoid(gate) * self.w_3(x)))

# replaces: alibi
def alibi_slopes(num_heads):
    if num_heads < 1:
        raise ValueError("at least one head")
    k = 1
    while 2 * k <= num_heads:
        k *= 2
    first = [2.0 ** (-8.0 * h / k) for h in range(1, k + 1)]
    extra = [2.0 ** (-8.0 * h / (2 * k)) for h in range(1, 2 * k + 1, 2)]
    return torch.tensor((first + extra)[:num_heads], dtype=torch.float64)


def alibi_bias(num_heads, length_q, length_k=None, causal=True, device=None, dtype=torch.float32):
    if length_k is None:
        length_k = length_q
    query_positions = torch.arange(length_q, device=device, dtype=dtype)[:, None] + (length_k - length_q)
    key_positions = torch.arange(length_k, device=device, dtype=dtype)[None, :]
    distance = query_positions - key_positions
    distance = torch.where(distance > 0, distance, torch.zeros_like(distance)) if causal else distance.abs()
    return -alibi_slopes(num_heads).to(device=device, dtype=dtype)[:, None, None] * distance

# replaces: modern_layer_parameters
def modern_layer_parameters(d_model, num_heads, num_kv_heads, d_ff):
    kv = num_kv_heads * (d_model // num_heads)
    w_q, w_k, w_v, w_o = d_model * d_model, d_model * kv, d_model * kv, d_model * d_model
    return w_q + w_k + w_v + w_o + d_model * d_ff * 3 + d_model + d_model
