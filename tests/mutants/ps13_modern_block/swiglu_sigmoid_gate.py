# fails: test_swiglu
# gates with the sigmoid (the original GLU of Dauphin et al.) instead of the SiLU
# replaces: swiglu
class SwiGLU(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff, bias=False)
        self.w_3 = nn.Linear(d_model, d_ff, bias=False)
        self.w_2 = nn.Linear(d_ff, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.w_2(self.dropout(torch.sigmoid(self.w_1(x)) * self.w_3(x)))
