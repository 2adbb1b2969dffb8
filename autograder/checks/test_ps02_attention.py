"""Checks for ps02_attention: masked softmax and scaled dot-product attention.

Each test takes ``submission`` (an ``autograder.grading.Submission``: calls run in a sandboxed
worker) and compares what comes back with ``attnlab`` on inputs chosen here.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import math

import torch

from autograder.checks import expect
from attnlab import attention as ref

ASSIGNMENT = "ps02_attention"

# test (= nbgrader grade_id of the graded cell) -> points
POINTS = {
    "test_masked_softmax": 2,
    "test_attention_shapes": 1,
    "test_attention_values": 3,
    "test_attention_mask": 2,
    "test_attention_fully_masked": 1,
    "test_score_std": 1,
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _qkv(gen, batch, lq, lk, dk, dv, dtype=torch.float32):
    q = torch.randn(*batch, lq, dk, generator=gen, dtype=dtype)
    k = torch.randn(*batch, lk, dk, generator=gen, dtype=dtype)
    v = torch.randn(*batch, lk, dv, generator=gen, dtype=dtype)
    return q, k, v


def _check_attention(submission, q, k, v, mask=None, what=""):
    call = f"scaled_dot_product_attention({what})"
    args = (q, k, v) if mask is None else (q, k, v, mask)
    got = submission.call("scaled_dot_product_attention", *args)
    out, weights = expect.sequence(got, 2, call)
    want_out, want_weights = ref.scaled_dot_product_attention(q, k, v, mask)
    expect.tensor(weights, want_weights, f"the weights returned by {call}")
    expect.tensor(out, want_out, f"the output returned by {call}")


def test_masked_softmax(submission):
    gen = _gen(201)
    for shape, dtype in (((3, 5), torch.float32), ((2, 4, 6), torch.float64), ((2, 3, 4, 4), torch.float32)):
        scores = 3 * torch.randn(*shape, generator=gen, dtype=dtype)
        mask = torch.rand(*shape, generator=gen) > 0.3
        mask[..., 0] = True  # every row keeps a key; fully masked rows are test_attention_fully_masked
        got = submission.call("masked_softmax", scores, mask)
        expect.tensor(got, ref.masked_softmax(scores, mask), f"masked_softmax(scores of shape {shape}, mask)")
    scores = torch.randn(2, 3, 4, generator=gen)
    got = submission.call("masked_softmax", scores, None)
    expect.tensor(got, ref.masked_softmax(scores, None), "masked_softmax(scores, None)")


def test_attention_shapes(submission):
    q, k, v = _qkv(_gen(202), (2,), 3, 5, 4, 6)
    got = submission.call("scaled_dot_product_attention", q, k, v)
    call = "scaled_dot_product_attention(query (2, 3, 4), key (2, 5, 4), value (2, 5, 6))"
    out, weights = expect.sequence(got, 2, call)
    for value, shape, name in ((out, (2, 3, 6), "output"), (weights, (2, 3, 5), "weights")):
        if not isinstance(value, torch.Tensor):
            raise expect.CheckFailed(f"the {name} of {call}: expected a tensor, got {expect.describe(value)}")
        expect.true(tuple(value.shape) == shape, f"the {name} of {call}: expected shape {shape}, got {tuple(value.shape)}")


def test_attention_values(submission):
    gen = _gen(203)
    cases = [((2,), 3, 5, 8, 2, torch.float32), ((1,), 4, 4, 16, 16, torch.float32),
             ((2, 3), 2, 7, 5, 3, torch.float64), ((), 6, 1, 4, 2, torch.float64)]
    for batch, lq, lk, dk, dv, dtype in cases:
        q, k, v = _qkv(gen, batch, lq, lk, dk, dv, dtype)
        _check_attention(submission, q, k, v, what=f"query {tuple(q.shape)}, key {tuple(k.shape)}, value {tuple(v.shape)}, {dtype}")


def test_attention_mask(submission):
    gen = _gen(204)
    # padding mask broadcast over the queries: (B, 1, Lk)
    q, k, v = _qkv(gen, (3,), 4, 6, 8, 5)
    lengths = torch.tensor([6, 4, 2])
    padding = (torch.arange(6)[None, :] < lengths[:, None])[:, None, :]
    _check_attention(submission, q, k, v, padding, what="a padding mask of shape (3, 1, 6)")
    # causal mask (L, L), float64, with heads
    q, k, v = _qkv(gen, (2, 2), 5, 5, 4, 4, torch.float64)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    _check_attention(submission, q, k, v, causal, what="a causal mask of shape (5, 5)")


def test_attention_fully_masked(submission):
    # Only what a fully masked row changes: zero weights and output there, finite everywhere,
    # and the other rows still a distribution over their allowed keys. (Values: the tests above.)
    gen = _gen(205)
    q, k, v = _qkv(gen, (2,), 3, 4, 8, 2)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[0, 1] = False  # query 1 of item 0 may attend to nothing
    mask[1, :, 2:] = False
    call = "scaled_dot_product_attention(..., mask) with a query that may attend to nothing"
    out, weights = expect.sequence(submission.call("scaled_dot_product_attention", q, k, v, mask), 2, call)
    for value, shape, name in ((out, (2, 3, 2), "output"), (weights, (2, 3, 4), "weights")):
        if not isinstance(value, torch.Tensor):
            raise expect.CheckFailed(f"the {name} of {call}: expected a tensor, got {expect.describe(value)}")
        expect.true(tuple(value.shape) == shape, f"the {name} of {call}: expected shape {shape}, got {tuple(value.shape)}")
        expect.true(bool(torch.isfinite(value).all()),
                    f"the {name} of {call} contains NaN or infinity; a query with no allowed key should get zeros")
    expect.true(bool((weights[0, 1] == 0).all()) and bool((out[0, 1] == 0).all()),
                f"{call}: the query that may attend to nothing should get all-zero weights and a zero output, "
                f"got weights {[round(x, 4) for x in weights[0, 1].tolist()]}")
    expect.true(bool((weights[~mask] == 0).all()), f"{call}: masked keys should get weight 0")
    allowed = mask.any(-1)
    sums = weights.sum(-1)[allowed]
    expect.tensor(sums, torch.ones_like(sums), f"the sums of the weights of the queries that may attend (over the keys) in {call}")


def test_score_std(submission):
    got = submission.get("score_std_unscaled")
    # q . k sums d_k = 64 products of independent N(0, 1) variables: variance 64.
    expect.number(got, math.sqrt(64), "score_std_unscaled", atol=1e-3, rtol=0)
