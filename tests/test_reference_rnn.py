"""The RNN baseline of chapter 1: shapes, masking, attention weights, the gradient-norm measurement,
and back-propagation through time by hand against autograd through PyTorch's own RNN."""
import pytest
import torch
import torch.nn as nn

from attnlab import Seq2SeqRNN, gradient_norm_by_distance
from attnlab.rnn import state_gradient_norms


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, 10, (3, 6), generator=g)
    src[1, 4:] = 0
    src[2, 2:] = 0
    return src, torch.randint(3, 12, (3, 5), generator=g)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("attention", [False, True])
def test_shapes_and_source_padding_invariance(cell, attention):
    torch.manual_seed(0)
    model = Seq2SeqRNN(10, 12, embed_dim=8, hidden_dim=16, cell=cell, attention=attention).double()
    src, tgt = batch()
    logits = model(src, tgt)
    assert logits.shape == (3, 5, 12)
    padded = torch.cat([src, torch.zeros(3, 3, dtype=torch.long)], 1)
    torch.testing.assert_close(model(padded, tgt), logits, rtol=1e-10, atol=1e-12)


def test_attention_weights_ignore_padding_and_sum_to_one():
    torch.manual_seed(1)
    model = Seq2SeqRNN(10, 12, embed_dim=8, hidden_dim=16, attention=True).double()
    src, tgt = batch()
    model(src, tgt)
    w = model.attn_weights  # (B, T, S)
    assert w.shape == (3, 5, 6)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 5, dtype=torch.float64))
    assert (w[1, :, 4:] == 0).all() and (w[2, :, 2:] == 0).all()


def test_greedy_decode_format_and_unknown_cell():
    model = Seq2SeqRNN(10, 12, embed_dim=8, hidden_dim=16, attention=True)
    out = model.greedy_decode(batch()[0], bos_id=1, eos_id=2, max_len=4)
    assert out.dtype == torch.long and out.shape[0] == 3 and out.shape[1] <= 4
    with pytest.raises(ValueError, match="cell must be one of"):
        Seq2SeqRNN(10, 12, cell="transformer")


def test_gradient_norm_by_distance_matches_autograd_and_vanishes():
    torch.manual_seed(2)
    rnn = nn.RNN(4, 8, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(0.3)  # a contracting recurrence: gradients must shrink with distance
    x = torch.randn(5, 30, 4, dtype=torch.float64)
    norms = gradient_norm_by_distance(rnn, x)
    assert norms.shape == (30,)
    xg = x.clone().requires_grad_(True)
    rnn(xg)[0][:, -1].sum().backward()
    torch.testing.assert_close(norms[7], xg.grad[:, 30 - 1 - 7].norm(dim=-1).mean())
    assert norms[20] < 1e-3 * norms[0]


def test_state_gradient_norms_equal_autograd_through_nn_rnn():
    """The chain rule by hand equals autograd through nn.RNN run one step at a time (float64), so that
    every state h_t is a node of the graph whose gradient can be read."""
    torch.manual_seed(3)
    B, T, H = 4, 12, 6
    rnn = nn.RNN(3, H, batch_first=True).double()
    x = torch.randn(B, T, 3, dtype=torch.float64)
    h = torch.zeros(1, B, H, dtype=torch.float64)
    states = []
    for t in range(T):
        _, h = rnn(x[:, t:t + 1], h)  # (1, B, H)
        h.retain_grad()
        states.append(h)
    states[-1].sum().backward()
    want = torch.stack([states[T - 1 - d].grad[0].norm(dim=-1).mean() for d in range(T)])
    with torch.no_grad():
        outputs, _ = rnn(x)  # (B, T, H): the same states, from the whole sequence at once
    got = state_gradient_norms(rnn.weight_hh_l0.detach(), outputs)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert got.dtype == torch.float64 and got[0].item() == pytest.approx(H ** 0.5, rel=1e-15)
    # One factor further back is the input, what gradient_norm_by_distance measures: dL/dx_t = W_ih^T ((1 - h_t^2) dL/dh_t).
    with torch.no_grad():
        to_inputs = torch.stack([((states[t].grad[0] * (1 - outputs[:, t] ** 2)) @ rnn.weight_ih_l0).norm(dim=-1).mean()
                                 for t in reversed(range(T))])
    torch.testing.assert_close(gradient_norm_by_distance(rnn, x), to_inputs, rtol=1e-10, atol=1e-12)
