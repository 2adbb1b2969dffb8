"""Checks for ps01_rnn_limits: the gradient-norm measurement, what it shows, and the chain rule behind it.

The learner writes ``gradient_norm_by_distance(rnn, inputs)``. A recurrent layer cannot cross the
worker boundary (only plain data does), so the checks call the notebook's given helper
``measure(cell, inputs, hidden_size, seed, forget_bias)``, which builds the seeded layer with
``make_rnn`` (both defined here and copied into the notebook by the release script, so that the
grader and the notebook build the same layer) and passes it to the learner's function. The expected
values come from ``attnlab.gradient_norm_by_distance`` on the same layer.

Kinds of work: implement (``gradient_norm_by_distance``), measure (two ratios), derive
(``steps_to_fade``, ``numbers_about_source``, ``sequential_steps``), predict
(``large_inputs_effect``: the truth is measured here, never in the learner's notebook) and a variant
the chapter gives only as an equation (``state_gradient_norms``: back-propagation through time by hand).
When a wrong answer matches a common mistake (computed here), the message names the broken contract;
a derived or predicted value never appears in a message.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from attnlab.course.messages import _
from autograder.checks import expect
from attnlab import gradient_norm_by_distance
from attnlab.rnn import state_gradient_norms

ASSIGNMENT = "ps01_rnn_limits"

POINTS = {
    "test_gradient_norm_shape": 1,
    "test_gradient_norm_values": 3,
    "test_rnn_ratio": 2,
    "test_lstm_open_gate_ratio": 2,
    "test_steps_to_fade": 2,
    "test_large_inputs_effect": 1,
    "test_state_gradient_norms": 3,
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


def _gradient_mistakes(cell, inputs, hidden_size, seed):
    """What the usual slips in gradient_norm_by_distance return on this layer, and what each breaks."""
    def grads(step):
        rnn = make_rnn(cell, inputs.size(-1), hidden_size, seed)
        x = inputs.detach().clone().requires_grad_(True)
        out, _unused = rnn(x)  # (B, T, H)
        out[:, step].sum().backward()
        return x.grad, out.size(-1)  # (B, T, input_size)

    last, hidden = grads(-1)
    first, _unused = grads(0)
    right = last.norm(dim=-1).mean(0).flip(0)
    return [
        (last.norm(dim=-1).mean(0), _("entry d is the distance back from the LAST step (entry 0 = the last input): "
                                      "yours looks indexed by time step, not by distance")),
        (last.norm(dim=-1).sum(0).flip(0), _("the norms are averaged over the batch, not summed")),
        (last.mean(0).norm(dim=-1).flip(0), _("average the B norms (one per sequence), not the norm of the averaged gradient")),
        (last.pow(2).sum(-1).mean(0).flip(0), _("the Euclidean norm of each gradient, not its square")),
        (right / hidden, _("the loss is the SUM of the last step's outputs, not their mean")),
        (first.norm(dim=-1).mean(0).flip(0), _("the loss is on the LAST step's outputs, not the first step's")),
    ]


def test_gradient_norm_shape(submission):
    x = torch.randn(2, 7, 3, generator=_gen(101), dtype=torch.float64)
    call = _("gradient_norm_by_distance(rnn, inputs) with a tanh RNN and inputs of shape (2, 7, 3) (B, T, input_size)")
    got = submission.call("measure", "rnn", x, 5, 0)
    if not isinstance(got, torch.Tensor):
        raise expect.CheckFailed(_("{call}: expected a tensor, got {got}", call=call, got=expect.describe(got)))
    expect.true(tuple(got.shape) == (7,), _("{call}: expected shape (7,) (one norm per distance), got {got_shape}",
                                            call=call, got_shape=tuple(got.shape)))
    expect.true(got.dtype == torch.float64, _("{call}: expected dtype torch.float64 (the dtype of the inputs), got {got_dtype}",
                                              call=call, got_dtype=got.dtype))


def test_gradient_norm_values(submission):
    gen = _gen(102)
    for cell, batch, length, features, hidden, seed in (("rnn", 3, 6, 4, 8, 1), ("lstm", 1, 9, 2, 5, 2),
                                                        ("gru", 4, 5, 3, 6, 3), ("rnn", 2, 12, 5, 16, 4)):
        x = torch.randn(batch, length, features, generator=gen, dtype=torch.float64)
        got = submission.call("measure", cell, x, hidden, seed)
        layer = {"rnn": "nn.RNN (tanh)", "lstm": "nn.LSTM", "gru": "nn.GRU"}[cell]
        name = _("gradient_norm_by_distance(rnn, inputs) with rnn = {layer} of hidden size {hidden}, inputs of "
                 "shape {x_shape}", layer=layer, hidden=hidden, x_shape=tuple(x.shape))
        expect.tensor_or_mistake(got, _expected(cell, x, hidden, seed), name, _gradient_mistakes(cell, x, hidden, seed))


def _ratio_check(submission, variable, cell, forget_bias, what):
    got = submission.get(variable)
    norms = _expected(cell, question_inputs(), 64, 0, forget_bias)
    expect.number(got, (norms[20] / norms[0]).item(), _("{variable} ({what})", variable=variable, what=what), atol=0, rtol=1e-3)


def test_rnn_ratio(submission):
    _ratio_check(submission, "rnn_ratio_20", "rnn", None, _("the tanh RNN's gradient norm at distance 20 over distance 0"))


def test_lstm_open_gate_ratio(submission):
    _ratio_check(submission, "lstm_open_gate_ratio_20", "lstm", 3.0,
                 _("the gradient norm at distance 20 over distance 0 for the LSTM with forget-gate bias 3"))


# --------------------------------------------------------------------------- derive: steps_to_fade
def linear_rnn(rho: float, hidden: int = 4) -> nn.RNN:
    """A recurrent layer that is exactly linear, h_t = W h_{t-1} + x_t with W = rho * (a cyclic
    permutation, an orthogonal matrix): ReLU units, no bias, non-negative weights and positive
    inputs keep every state positive, where ReLU is the identity."""
    rnn = nn.RNN(hidden, hidden, nonlinearity="relu", bias=False, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.eye(hidden, dtype=torch.float64))
        rnn.weight_hh_l0.copy_(rho * torch.eye(hidden, dtype=torch.float64).roll(1, 0))
    return rnn


def measured_steps_to_fade(rho: float, factor: float, length: int = 80) -> int:
    """The first distance d at which g_d <= factor * g_0, measured with the reference on linear_rnn(rho)."""
    inputs = 0.5 + torch.rand(1, length, 4, generator=_gen(110), dtype=torch.float64)  # positive
    norms = gradient_norm_by_distance(linear_rnn(rho), inputs)
    below = (norms <= factor * norms[0]).nonzero()
    if not len(below):
        raise RuntimeError(f"the gradient of linear_rnn({rho}) does not fall to {factor} of g_0 within {length} steps")
    return int(below[0])


# (rho, factor): none where log(factor) / log(rho) is close to a whole number, so that measurement
# and formula cannot disagree by rounding; several where rounding down or to the nearest gives another answer.
FADE_CASES = ((0.8, 0.1), (0.9, 0.01), (0.5, 0.05), (0.95, 0.5), (0.3, 0.001), (0.7, 0.2))


def test_steps_to_fade(submission):
    for rho, factor in FADE_CASES:
        want = measured_steps_to_fade(rho, factor)
        got = submission.call("steps_to_fade", rho, factor)
        name = f"steps_to_fade({rho}, {factor})"
        if isinstance(got, (int, float)) and not isinstance(got, bool) and got != want:
            exact = math.log(factor) / math.log(rho)
            if got in (math.floor(exact), round(exact)):
                raise expect.CheckFailed(
                    _("{name}: {got:g} is not the expected value; check how you turn the real solution d of rho**d = "
                      "factor into a whole number of steps: the answer is the FIRST distance at which the ratio has "
                      "fallen to factor or below", name=name, got=got))
        expect.number(got, want, name, atol=0, rtol=0)


# --------------------------------------------------------------------------- predict: large_inputs_effect
CHOICES = ("grow", "fade", "about the same")


def large_inputs_truth() -> str:
    """Measured here: the tanh RNN of section 2 with recurrent matrix 1.5 x orthogonal, inputs x 10."""
    rnn = make_rnn("rnn", 16, 64, seed=0)
    with torch.no_grad():
        nn.init.orthogonal_(rnn.weight_hh_l0, gain=1.5, generator=_gen(0))
    norms = gradient_norm_by_distance(rnn, 10 * question_inputs())
    ratio = (norms[49] / norms[0]).item()
    return "grow" if ratio > 10 else "fade" if ratio < 0.1 else "about the same"


def test_large_inputs_effect(submission):
    answer = expect.choice(submission.get("large_inputs_effect"), "large_inputs_effect", CHOICES)
    expect.true(answer == large_inputs_truth(),
                _("large_inputs_effect: {answer!r} is not the expected answer. Think about every factor of the "
                  "Jacobian product for inputs this large, or measure it: build the layer as described and run "
                  "your gradient_norm_by_distance on 10 * inputs", answer=answer))


# --------------------------------------------------------------------------- variant: state_gradient_norms
def _state_mistakes(w_hh, states):
    """What the usual slips of back-propagation by hand give, and the contract each breaks."""
    def by_hand(transpose=False, derivative_at=0, derivative=True):
        w = w_hh.T if transpose else w_hh
        grad = torch.ones_like(states[:, -1])
        norms = [grad.norm(dim=-1).mean()]
        for t in range(states.size(1) - 1, 0, -1):
            d = 1 - states[:, t + derivative_at] ** 2 if derivative else 1
            grad = (grad * d) @ w
            norms.append(grad.norm(dim=-1).mean())
        return torch.stack(norms)

    right = by_hand()
    return [
        (by_hand(transpose=True), _("the chain rule multiplies by the TRANSPOSE of W_hh: dL/dh_(t-1) = W_hh^T (...), "
                                    "which is (grad * (1 - h_t**2)) @ W_hh for a row of grad, not @ W_hh.T")),
        (by_hand(derivative_at=-1), _("the tanh derivative 1 - h**2 belongs to the state the step produces (h_t), "
                                      "not the one it reads (h_(t-1))")),
        (by_hand(derivative=False), _("each step multiplies by the tanh's derivative diag(1 - h_t**2) as well as by W_hh")),
        (right.flip(0), _("entry d is the distance back from the LAST state (entry 0 = the last state)")),
    ]


def _tanh_states(batch, length, features, hidden, seed, gen):
    rnn = make_rnn("rnn", features, hidden, seed)
    x = torch.randn(batch, length, features, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        states, _unused = rnn(x)  # (B, T, H)
    return rnn.weight_hh_l0.detach().clone(), states


def test_state_gradient_norms(submission):
    gen = _gen(120)
    for batch, length, features, hidden, seed in ((2, 6, 3, 4, 1), (3, 10, 2, 8, 2), (1, 4, 5, 3, 3)):
        w_hh, states = _tanh_states(batch, length, features, hidden, seed, gen)
        got = submission.call("state_gradient_norms", w_hh, states)
        name = (_("state_gradient_norms(w_hh of shape {w_hh_shape}, states of shape {states_shape}) of a tanh RNN",
                  w_hh_shape=tuple(w_hh.shape), states_shape=tuple(states.shape)))
        expect.tensor_or_mistake(got, state_gradient_norms(w_hh, states), name, _state_mistakes(w_hh, states))


# --------------------------------------------------------------------------- derive: counting
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
