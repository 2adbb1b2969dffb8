"""Checks for ps03_self_attention: single-head self-attention and additive (Bahdanau) attention.

The learner's modules live in the sandboxed worker. Each check builds one there, loads weights
chosen here into it (``load_state_dict``, strict: the parameter names must be the ones the notebook
asks for) and compares its outputs and weights with the reference on the same weights:
``attnlab.scaled_dot_product_attention`` of the three projections for self-attention
(the reference has no separate self-attention module), ``attnlab.AdditiveAttention``.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import torch

from autograder.checks import expect
from attnlab import attention as ref

ASSIGNMENT = "ps03_self_attention"

POINTS = {
    "test_self_attention_shapes": 1,
    "test_self_attention_values": 3,
    "test_self_attention_mask": 1,
    "test_additive_values": 3,
    "test_additive_mask": 1,
    "test_additive_parameter_count": 1,
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _load(module, state: dict, label: str, expected: str):
    try:
        module.method("load_state_dict", state)
    except AssertionError as exc:
        raise expect.CheckFailed(f"{label}: could not load weights named {expected} into your module: {exc}") from None


def _self_attention(submission, d_model, d_k, d_v, gen, dtype=torch.float32):
    """The learner's SelfAttention with random weights, and those weights."""
    weights = {name: torch.randn(size, d_model, generator=gen, dtype=dtype) / d_model ** 0.5
               for name, size in (("w_q.weight", d_k), ("w_k.weight", d_k), ("w_v.weight", d_v))}
    label = f"SelfAttention({d_model}, {d_k}, {d_v})"
    mine = submission.new("SelfAttention", d_model, d_k, d_v)
    if dtype == torch.float64:
        mine.method("double")
    _load(mine, weights, label, f"w_q.weight ({d_k}, {d_model}), w_k.weight ({d_k}, {d_model}) and "
                                f"w_v.weight ({d_v}, {d_model}) (bias-free nn.Linear layers)")
    return mine, weights, label


def _check_self_attention(submission, d_model, d_k, d_v, x, gen, mask=None, what=""):
    mine, w, label = _self_attention(submission, d_model, d_k, d_v, gen, x.dtype)
    call = f"{label} applied to x of shape {tuple(x.shape)}, {x.dtype}{what}"
    out, weights = expect.sequence(mine(x) if mask is None else mine(x, mask), 2, call)
    reference = ref.SelfAttention(d_model, d_k, d_v).to(x.dtype)
    reference.load_state_dict(w)
    with torch.no_grad():
        want_out, want_weights = reference(x, mask)
    expect.tensor(weights, want_weights, f"the weights returned by {call}")
    expect.tensor(out, want_out, f"the output returned by {call}")


def test_self_attention_shapes(submission):
    gen = _gen(301)
    mine, _, label = _self_attention(submission, 8, 4, 3, gen)
    call = f"{label} applied to x of shape (2, 5, 8)"
    out, weights = expect.sequence(mine(torch.randn(2, 5, 8, generator=gen)), 2, call)
    for value, shape, name in ((out, (2, 5, 3), "output"), (weights, (2, 5, 5), "weights")):
        if not isinstance(value, torch.Tensor):
            raise expect.CheckFailed(f"the {name} of {call}: expected a tensor, got {expect.describe(value)}")
        expect.true(tuple(value.shape) == shape, f"the {name} of {call}: expected shape {shape}, got {tuple(value.shape)}")


def test_self_attention_values(submission):
    gen = _gen(302)
    for d_model, d_k, d_v, batch, length, dtype in ((8, 4, 4, 2, 5, torch.float32), (6, 3, 5, 1, 7, torch.float64),
                                                    (16, 8, 2, 3, 4, torch.float32)):
        x = torch.randn(batch, length, d_model, generator=gen, dtype=dtype)
        _check_self_attention(submission, d_model, d_k, d_v, x, gen)


def test_self_attention_mask(submission):
    gen = _gen(303)
    x = torch.randn(2, 5, 8, generator=gen, dtype=torch.float64)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    _check_self_attention(submission, 8, 4, 4, x, gen, causal, " with a causal mask (5, 5)")
    padding = (torch.arange(5)[None, :] < torch.tensor([5, 3])[:, None])[:, None, :]  # (2, 1, 5)
    _check_self_attention(submission, 8, 4, 6, x, gen, padding, " with a padding mask (2, 1, 5)")


def _additive_pair(submission, query_dim, key_dim, hidden_dim, seed, dtype=torch.float32):
    reference = ref.AdditiveAttention(query_dim, key_dim, hidden_dim).to(dtype)
    gen = _gen(seed)  # a generator of its own: no global seeding in the grader's threads
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.uniform_(-parameter.size(-1) ** -0.5, parameter.size(-1) ** -0.5, generator=gen)
    label = f"AdditiveAttention({query_dim}, {key_dim}, {hidden_dim})"
    mine = submission.new("AdditiveAttention", query_dim, key_dim, hidden_dim)
    if dtype == torch.float64:
        mine.method("double")
    _load(mine, dict(reference.state_dict()), label,
          f"w_q.weight ({hidden_dim}, {query_dim}), w_k.weight ({hidden_dim}, {key_dim}) and v.weight (1, {hidden_dim}) "
          "(bias-free nn.Linear layers)")
    return reference, mine, label


def _check_additive(submission, dims, shapes, gen, seed, dtype=torch.float32, mask=None, what=""):
    reference, mine, label = _additive_pair(submission, *dims, seed, dtype)
    q, k, v = (torch.randn(*shape, generator=gen, dtype=dtype) for shape in shapes)
    args = (q, k, v) if mask is None else (q, k, v, mask)
    call = f"{label} applied to query {tuple(q.shape)}, key {tuple(k.shape)}, value {tuple(v.shape)}, {dtype}{what}"
    out, weights = expect.sequence(mine(*args), 2, call)
    with torch.no_grad():
        want_out, want_weights = reference(*args)
    expect.tensor(weights, want_weights, f"the weights returned by {call}")
    expect.tensor(out, want_out, f"the output returned by {call}")


def test_additive_values(submission):
    gen = _gen(304)
    _check_additive(submission, (3, 5, 4), ((2, 4, 3), (2, 6, 5), (2, 6, 2)), gen, 304)
    _check_additive(submission, (8, 8, 16), ((1, 1, 8), (1, 5, 8), (1, 5, 8)), gen, 305, torch.float64)
    _check_additive(submission, (6, 4, 5), ((3, 2, 6), (3, 3, 4), (3, 3, 7)), gen, 306, torch.float64)


def test_additive_mask(submission):
    gen = _gen(307)
    padding = (torch.arange(6)[None, :] < torch.tensor([6, 2, 4])[:, None])[:, None, :]  # (3, 1, 6)
    _check_additive(submission, (4, 6, 8), ((3, 2, 4), (3, 6, 6), (3, 6, 3)), gen, 307, torch.float64, padding,
                    " with a padding mask (3, 1, 6)")


def test_additive_parameter_count(submission):
    got = submission.get("additive_parameters")
    # W_q (64 x 32), W_k (64 x 48) and v (1 x 64), all without bias
    expect.number(got, 32 * 64 + 48 * 64 + 64, "additive_parameters", atol=0, rtol=0)
