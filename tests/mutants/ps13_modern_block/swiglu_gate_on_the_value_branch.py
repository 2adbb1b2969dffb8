# fails: test_swiglu
# puts the SiLU on w_3's branch: SiLU(w_3 x) * w_1 x (the same shapes, another function of the weights)
# replaces: swiglu
class SwiGLU(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff, bias=False)
        self.w_3 = nn.Linear(d_model, d_ff, bias=False)
        self.w_2 = nn.Linear(d_ff, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.w_2(self.dropout(self.w_1(x) * F.silu(self.w_3(x))))
