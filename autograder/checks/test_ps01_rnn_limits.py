"""Checks for ps01_rnn_limits: the gradient-norm measurement and what it shows.

The learner writes ``gradient_norm_by_distance(rnn, inputs)``. A recurrent layer cannot cross the
worker boundary (only plain data does), so the checks call the notebook's given helper
``measure(cell, inputs, hidden_size, seed, forget_bias)``, which builds the seeded layer with
``make_rnn`` (both defined here and copied into the notebook by the release script, so that the
grader and the notebook build the same layer) and passes it to the learner's function. The expected
values come from ``attnlab.gradient_norm_by_distance`` on the same layer.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from autograder.checks import expect
from attnlab import gradient_norm_by_distance

ASSIGNMENT = "ps01_rnn_limits"

POINTS = {
    "test_gradient_norm_shape": 1,
    "test_gradient_norm_values": 3,
    "test_rnn_ratio": 2,
    "test_lstm_open_gate_ratio": 2,
    "test_bottleneck": 1,
    "test_sequential_steps": 1,
}


def make_rnn(cell: str, input_size: int, hidden_size: int, seed: int = 0, forget_bias: float | None = None) -> nn.RNNBase:
    """A batch-first, float64 recurrent layer with PyTorch's default initialisation, drawn with ``seed``.

    cell: "rnn" (tanh), "lstm" or "gru". ``forget_bias`` (LSTM only) sets the bias of the forget
    gate, so that a large value starts the gate almost open.
    """
    rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](input_size, hidden_size, batch_first=True).double()
    generator = torch.Generator().manual_seed(seed)  # its own generator: the same layer whatever else runs
    bound = 1 / hidden_size ** 0.5
    with torch.no_grad():
        for parameter in rnn.parameters():  # PyTorch's default for recurrent layers: U(-bound, bound)
            parameter.uniform_(-bound, bound, generator=generator)
        if forget_bias is not None:  # PyTorch orders the LSTM's gates: input, forget, cell, output
            rnn.bias_ih_l0[hidden_size:2 * hidden_size] = forget_bias
            rnn.bias_hh_l0[hidden_size:2 * hidden_size] = 0.0
    return rnn


def measure(cell: str, inputs: torch.Tensor, hidden_size: int = 64, seed: int = 0,
            forget_bias: float | None = None) -> torch.Tensor:
    """Your gradient_norm_by_distance on the layer make_rnn(cell, ...) and float64 inputs (B, T, input_size)."""
    rnn = make_rnn(cell, inputs.size(-1), hidden_size, seed, forget_bias)
    return gradient_norm_by_distance(rnn, inputs)


# What the questions ask about: 32 random sequences of 50 steps with 16 features.
QUESTION_INPUTS = dict(batch=32, length=50, features=16, seed=1)


def question_inputs() -> torch.Tensor:
    q = QUESTION_INPUTS
    return torch.randn(q["batch"], q["length"], q["features"], generator=torch.Generator().manual_seed(q["seed"]),
                       dtype=torch.float64)


def _expected(cell, inputs, hidden_size, seed, forget_bias=None):
    return gradient_norm_by_distance(make_rnn(cell, inputs.size(-1), hidden_size, seed, forget_bias), inputs)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gradient_norm_shape(submission):
    x = torch.randn(2, 7, 3, generator=_gen(101), dtype=torch.float64)
    call = "gradient_norm_by_distance(rnn, inputs) with a tanh RNN and inputs of shape (2, 7, 3) (B, T, input_size)"
    got = submission.call("measure", "rnn", x, 5, 0)
    if not isinstance(got, torch.Tensor):
        raise expect.CheckFailed(f"{call}: expected a tensor, got {expect.describe(got)}")
    expect.true(tuple(got.shape) == (7,), f"{call}: expected shape (7,) (one norm per distance), got {tuple(got.shape)}")
    expect.true(got.dtype == torch.float64, f"{call}: expected dtype torch.float64 (the dtype of the inputs), got {got.dtype}")


def test_gradient_norm_values(submission):
    gen = _gen(102)
    for cell, batch, length, features, hidden, seed in (("rnn", 3, 6, 4, 8, 1), ("lstm", 1, 9, 2, 5, 2),
                                                        ("gru", 4, 5, 3, 6, 3), ("rnn", 2, 12, 5, 16, 4)):
        x = torch.randn(batch, length, features, generator=gen, dtype=torch.float64)
        got = submission.call("measure", cell, x, hidden, seed)
        layer = {"rnn": "nn.RNN (tanh)", "lstm": "nn.LSTM", "gru": "nn.GRU"}[cell]
        name = f"gradient_norm_by_distance(rnn, inputs) with rnn = {layer} of hidden size {hidden}, inputs of shape {tuple(x.shape)}"
        expect.tensor(got, _expected(cell, x, hidden, seed), name)


def _ratio_check(submission, variable, cell, forget_bias, what):
    got = submission.get(variable)
    norms = _expected(cell, question_inputs(), 64, 0, forget_bias)
    expect.number(got, (norms[20] / norms[0]).item(), f"{variable} ({what})", atol=0, rtol=1e-3)


def test_rnn_ratio(submission):
    _ratio_check(submission, "rnn_ratio_20", "rnn", None, "the tanh RNN's gradient norm at distance 20 over distance 0")


def test_lstm_open_gate_ratio(submission):
    _ratio_check(submission, "lstm_open_gate_ratio_20", "lstm", 3.0,
                 "the gradient norm at distance 20 over distance 0 for the LSTM with forget-gate bias 3")


def test_bottleneck(submission):
    for length, hidden, attention, want in ((10, 64, False, 64), (50, 64, False, 64), (7, 32, True, 224),
                                            (40, 128, True, 5120), (1, 16, True, 16)):
        got = submission.call("numbers_about_source", length, hidden, attention)
        expect.number(got, want, f"numbers_about_source({length}, {hidden}, attention={attention})", atol=0, rtol=0)


def test_sequential_steps(submission):
    for layer, length, want in (("rnn", 10, 10), ("rnn", 1000, 1000), ("self-attention", 10, 1),
                                ("self-attention", 1000, 1)):
        got = submission.call("sequential_steps", layer, length)
        expect.number(got, want, f"sequential_steps({layer!r}, {length})", atol=0, rtol=0)
