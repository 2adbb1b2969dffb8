"""Checks for ps04_multihead: the MultiHeadAttention module and its parameter count.

The learner's module lives in the sandboxed worker; each check builds it there, loads the
reference's weights into it (``load_state_dict``, strict) and compares its outputs and per-head
weights with ``attnlab.MultiHeadAttention`` on inputs chosen here.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import torch

from autograder.checks import expect
from autograder.protocol import StudentError
from attnlab.multihead import MultiHeadAttention

ASSIGNMENT = "ps04_multihead"

POINTS = {
    "test_mha_init": 1,
    "test_mha_parameters": 1,
    "test_mha_split_merge": 1,
    "test_mha_self_attention": 2,
    "test_mha_cross_attention": 2,
    "test_mha_mask": 2,
    "test_mha_parameter_count": 1,
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pair(submission, d_model, num_heads, seed, bias=True, dtype=torch.float32):
    """The reference module with random weights and the learner's module holding the same weights."""
    ref = MultiHeadAttention(d_model, num_heads, bias=bias).to(dtype).eval()
    gen = _gen(seed)  # a generator of its own: no global seeding in the grader's threads
    with torch.no_grad():
        for parameter in ref.parameters():
            parameter.uniform_(-d_model ** -0.5, d_model ** -0.5, generator=gen)
    label = f"MultiHeadAttention({d_model}, {num_heads}{'' if bias else ', bias=False'})"
    mine = submission.new("MultiHeadAttention", d_model, num_heads, 0.0, bias)
    mine.method("eval")
    if dtype == torch.float64:
        mine.method("double")
    try:
        mine.method("load_state_dict", dict(ref.state_dict()))
    except AssertionError as exc:
        raise expect.CheckFailed(
            f"{label}: the reference weights (w_q, w_k, w_v, w_o, each a weight of shape ({d_model}, {d_model})"
            f"{' and a bias' if bias else ' without bias'}) could not be loaded into your module: {exc}") from None
    return ref, mine, label


def _compare(ref, mine, label, query, key, value, mask=None, what=""):
    args = (query, key, value) if mask is None else (query, key, value, mask)
    call = f"{label} applied to {what}"
    out, weights = expect.sequence(mine(*args), 2, call)
    with torch.no_grad():
        want_out, want_weights = ref(*args)
    expect.tensor(weights, want_weights, f"the per-head weights returned by {call}")
    expect.tensor(out, want_out, f"the output returned by {call}")


def test_mha_init(submission):
    for d_model, num_heads in ((10, 3), (16, 5)):
        call = f"MultiHeadAttention({d_model}, {num_heads})"
        try:
            submission.new("MultiHeadAttention", d_model, num_heads)
        except StudentError as exc:  # the learner's code raised (or failed otherwise)
            if exc.raised("ValueError"):
                continue
            raise expect.CheckFailed(f"{call} should raise a ValueError ({d_model} is not divisible by {num_heads}); {exc}") from None
        raise expect.CheckFailed(f"{call} should raise a ValueError: {d_model} dimensions cannot be split into "
                                 f"{num_heads} heads of equal size, but it raised nothing")
    for d_model, num_heads in ((12, 3), (8, 8)):
        submission.new("MultiHeadAttention", d_model, num_heads)  # divisible: must not raise


def test_mha_parameters(submission):
    # Loading the reference's state_dict (strict) checks the names and shapes of every parameter.
    for d_model, num_heads, bias in ((8, 2, True), (12, 4, False)):
        _pair(submission, d_model, num_heads, seed=401, bias=bias)


def test_mha_split_merge(submission):
    gen = _gen(406)
    for d_model, num_heads, batch, length in ((8, 2, 2, 5), (12, 3, 1, 4), (6, 6, 2, 3)):
        ref = MultiHeadAttention(d_model, num_heads)
        mine = submission.new("MultiHeadAttention", d_model, num_heads)
        x = torch.randn(batch, length, d_model, generator=gen)
        label = f"MultiHeadAttention({d_model}, {num_heads})"
        heads = expect.tensor(mine.method("split_heads", x), ref.split_heads(x),
                              f"{label}.split_heads(x) with x of shape {tuple(x.shape)} (B, L, d_model)")
        expect.tensor(mine.method("merge_heads", heads), x,
                      f"{label}.merge_heads(heads) with heads of shape {tuple(heads.shape)} (B, h, L, d_head)")


def test_mha_self_attention(submission):
    gen = _gen(402)
    for d_model, num_heads, batch, length, dtype in ((16, 4, 2, 5, torch.float32), (12, 3, 1, 7, torch.float64),
                                                     (8, 1, 3, 4, torch.float32), (24, 6, 2, 3, torch.float64)):
        ref, mine, label = _pair(submission, d_model, num_heads, seed=402 + d_model, dtype=dtype)
        x = torch.randn(batch, length, d_model, generator=gen, dtype=dtype)
        _compare(ref, mine, label, x, x, x, what=f"query = key = value of shape {tuple(x.shape)}, {dtype}")


def test_mha_cross_attention(submission):
    gen = _gen(403)
    for d_model, num_heads, batch, lq, lk, dtype in ((16, 4, 2, 3, 6, torch.float32), (12, 2, 1, 5, 2, torch.float64)):
        ref, mine, label = _pair(submission, d_model, num_heads, seed=403 + d_model, dtype=dtype)
        q = torch.randn(batch, lq, d_model, generator=gen, dtype=dtype)
        k = torch.randn(batch, lk, d_model, generator=gen, dtype=dtype)
        v = torch.randn(batch, lk, d_model, generator=gen, dtype=dtype)
        _compare(ref, mine, label, q, k, v,
                 what=f"query {tuple(q.shape)}, key {tuple(k.shape)}, value {tuple(v.shape)}, {dtype}")


def test_mha_mask(submission):
    gen = _gen(404)
    # a padding mask (B, 1, 1, Lk) in cross-attention
    ref, mine, label = _pair(submission, 16, 4, seed=404)
    q, kv = torch.randn(3, 4, 16, generator=gen), torch.randn(3, 6, 16, generator=gen)
    lengths = torch.tensor([6, 4, 1])
    padding = (torch.arange(6)[None, :] < lengths[:, None])[:, None, None, :]
    _compare(ref, mine, label, q, kv, kv, padding, what="query (3, 4, 16), key = value (3, 6, 16), with a padding mask (3, 1, 1, 6)")
    # a causal mask (L, L) in self-attention, float64
    ref, mine, label = _pair(submission, 12, 3, seed=405, dtype=torch.float64)
    x = torch.randn(2, 5, 12, generator=gen, dtype=torch.float64)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    _compare(ref, mine, label, x, x, x, causal, what="query = key = value (2, 5, 12), float64, with a causal mask (5, 5)")


def test_mha_parameter_count(submission):
    got = submission.get("mha_base_parameters")
    # four (512, 512) projections with biases; the number of heads only changes a reshape
    expect.number(got, 4 * (512 * 512 + 512), "mha_base_parameters", atol=0, rtol=0)
