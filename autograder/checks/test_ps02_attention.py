"""Checks for ps02_attention: masked softmax, scaled dot-product attention, why it is scaled, and
Luong's general score.

Each test takes ``submission`` (an ``autograder.grading.Submission``: calls run in a sandboxed
worker) and compares what comes back with ``attnlab`` on inputs chosen here.

Kinds of work: implement (``masked_softmax``, ``scaled_dot_product_attention`` with its dropout
contract), derive (``score_std_unscaled``, the exact value of the variance argument, and
``score_variance(d_k, sigma2)`` on hidden values), predict (``over_scaled_weights``: the truth is
sampled here) and a variant the chapter names but does not show (``general_attention``). When a
wrong tensor is what a common mistake gives (softmax over the queries, division by d_k, no scaling,
an inverted mask, float32 arithmetic on float64 inputs), the message names the broken contract; a
derived or predicted value never appears in a message.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import functools
import math

import torch

from attnlab.course.messages import _
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
    "test_attention_dropout": 1,
    "test_score_std": 1,
    "test_score_variance": 2,
    "test_over_scaled_weights": 1,
    "test_general_attention": 3,
}

FLOAT32_TOLERANCE = (1e-5, 1e-4)  # (atol, rtol): what float32 arithmetic can be told apart from


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _qkv(gen, batch, lq, lk, dk, dv, dtype=torch.float32):
    q = torch.randn(*batch, lq, dk, generator=gen, dtype=dtype)
    k = torch.randn(*batch, lk, dk, generator=gen, dtype=dtype)
    v = torch.randn(*batch, lk, dv, generator=gen, dtype=dtype)
    return q, k, v


# --------------------------------------------------------------------------- common mistakes
def attention_from_scores(scores, value, mask=None, dim=-1):
    """softmax over ``dim`` with masked entries at 0 (dim=-2 is the softmax over the queries)."""
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=dim)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ value, weights


def attention_mistakes(q, k, v, mask=None):
    """(output, weights, explanation) of the usual slips of scaled dot-product attention on these inputs."""
    d_k, d_v = q.size(-1), v.size(-1)
    raw = q @ k.transpose(-2, -1)
    mistakes = [
        (*attention_from_scores(raw / math.sqrt(d_k), v, mask, dim=-2),
         _("the softmax runs over the keys (the last axis), so that each query's weights sum to 1; "
           "yours looks normalised over the queries (dim=-2)")),
        (*attention_from_scores(raw / d_k, v, mask), _("the scores are divided by sqrt(d_k), not by d_k")),
        (*attention_from_scores(raw, v, mask), _("the scores are divided by sqrt(d_k); yours look unscaled")),
        (*attention_from_scores(raw / math.sqrt(d_v), v, mask),
         _("d_k is the size of the query and key vectors (query.size(-1)), not of the values")),
    ]
    if mask is not None:
        mistakes.append((*attention_from_scores(raw / math.sqrt(d_k), v, ~mask),
                         _("the mask is True where a query MAY attend; yours looks inverted")))
    return mistakes


def float32_mistake(function, *tensors):
    """The result of ``function`` computed in float32 and cast back, for float64 inputs (else nothing)."""
    if tensors[0].dtype != torch.float64:
        return []
    out, weights = function(*(t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in tensors))
    return [(out.double(), weights.double(),
             _("computed in float32 and cast back: compute in the dtype of the inputs (float64 here), "
               "the grader compares float64 results to rtol=1e-7"))]


def _check_pair(got, want_out, want_weights, call, mistakes):
    out, weights = expect.sequence(got, 2, call)
    swapped = [(want_out, _("the function returns the pair (output, weights), in this order"))]
    tolerance = lambda m: (FLOAT32_TOLERANCE,) if "float32" in m[2] else ()  # noqa: E731
    expect.tensor_or_mistake(weights, want_weights, _("the weights returned by {call}", call=call),
                             swapped + [(m[1], m[2], *tolerance(m)) for m in mistakes])
    expect.tensor_or_mistake(out, want_out, _("the output returned by {call}", call=call),
                             [(m[0], m[2], *tolerance(m)) for m in mistakes])


def _check_attention(submission, q, k, v, mask=None, what=""):
    call = _("scaled_dot_product_attention({what})", what=what)
    args = (q, k, v) if mask is None else (q, k, v, mask)
    got = submission.call("scaled_dot_product_attention", *args)
    mistakes = attention_mistakes(q, k, v, mask) + float32_mistake(ref.scaled_dot_product_attention, *args)
    _check_pair(got, *ref.scaled_dot_product_attention(q, k, v, mask), call, mistakes)


# --------------------------------------------------------------------------- implement
def test_masked_softmax(submission):
    gen = _gen(201)
    for shape, dtype in (((3, 5), torch.float32), ((2, 4, 6), torch.float64), ((2, 3, 4, 4), torch.float32)):
        scores = 3 * torch.randn(*shape, generator=gen, dtype=dtype)
        mask = torch.rand(*shape, generator=gen) > 0.3
        mask[..., 0] = True  # every row keeps a key; fully masked rows are test_attention_fully_masked
        got = submission.call("masked_softmax", scores, mask)
        _unused, over_rows = attention_from_scores(scores, torch.eye(shape[-1], dtype=dtype), mask, dim=-2)
        expect.tensor_or_mistake(got, ref.masked_softmax(scores, mask), _("masked_softmax(scores of shape {shape}, mask)",
                                                                          shape=shape), [
            (over_rows, _("the softmax runs over the last axis (the keys): each row sums to 1; yours looks normalised over dim=-2")),
            (ref.masked_softmax(scores, ~mask), _("the mask is True where a key MAY be used; yours looks inverted")),
            (torch.softmax(scores, -1), _("masked keys must get weight 0; yours look ignored")),
        ])
    scores = torch.randn(2, 3, 4, generator=gen)
    got = submission.call("masked_softmax", scores, None)
    expect.tensor(got, ref.masked_softmax(scores, None), _("masked_softmax(scores, None)"))


def test_attention_shapes(submission):
    q, k, v = _qkv(_gen(202), (2,), 3, 5, 4, 6)
    got = submission.call("scaled_dot_product_attention", q, k, v)
    call = "scaled_dot_product_attention(query (2, 3, 4), key (2, 5, 4), value (2, 5, 6))"
    out, weights = expect.sequence(got, 2, call)
    for value, shape, name in ((out, (2, 3, 6), "output"), (weights, (2, 3, 5), "weights")):
        if not isinstance(value, torch.Tensor):
            raise expect.CheckFailed(_("the {name} of {call}: expected a tensor, got {value}",
                                       name=name, call=call, value=expect.describe(value)))
        expect.true(tuple(value.shape) == shape, _("the {name} of {call}: expected shape {shape}, got {value_shape}",
                                                   name=name, call=call, shape=shape, value_shape=tuple(value.shape)))


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
    _check_attention(submission, q, k, v, padding, what=_("a padding mask of shape (3, 1, 6)"))
    # causal mask (L, L), float64, with heads
    q, k, v = _qkv(gen, (2, 2), 5, 5, 4, 4, torch.float64)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    _check_attention(submission, q, k, v, causal, what=_("a causal mask of shape (5, 5)"))


def test_attention_fully_masked(submission):
    # Only what a fully masked row changes: zero weights and output there, finite everywhere,
    # and the other rows still a distribution over their allowed keys. (Values: the tests above.)
    gen = _gen(205)
    q, k, v = _qkv(gen, (2,), 3, 4, 8, 2)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[0, 1] = False  # query 1 of item 0 may attend to nothing
    mask[1, :, 2:] = False
    call = _("scaled_dot_product_attention(..., mask) with a query that may attend to nothing")
    out, weights = expect.sequence(submission.call("scaled_dot_product_attention", q, k, v, mask), 2, call)
    for value, shape, name in ((out, (2, 3, 2), "output"), (weights, (2, 3, 4), "weights")):
        if not isinstance(value, torch.Tensor):
            raise expect.CheckFailed(_("the {name} of {call}: expected a tensor, got {value}",
                                       name=name, call=call, value=expect.describe(value)))
        expect.true(tuple(value.shape) == shape, _("the {name} of {call}: expected shape {shape}, got {value_shape}",
                                                   name=name, call=call, shape=shape, value_shape=tuple(value.shape)))
        expect.true(bool(torch.isfinite(value).all()),
                    _("the {name} of {call} contains NaN or infinity; a query with no allowed key should get zeros",
                      name=name, call=call))
    expect.true(bool((weights[0, 1] == 0).all()) and bool((out[0, 1] == 0).all()),
                _("{call}: the query that may attend to nothing should get all-zero weights and a zero output, "
                  "got weights {weights}", call=call, weights=[round(x, 4) for x in weights[0, 1].tolist()]))
    expect.true(bool((weights[~mask] == 0).all()), _("{call}: masked keys should get weight 0", call=call))
    allowed = mask.any(-1)
    sums = weights.sum(-1)[allowed]
    expect.tensor(sums, torch.ones_like(sums), _("the sums of the weights of the queries that may attend (over the keys) in {call}",
                                                 call=call))


def test_attention_dropout(submission):
    """The dropout contract, read through value = [identity | ones]: the first Lk columns of the output
    are the weights that met the values, the last one their row sums. The learner's own weights (from
    dropout_p=0) are the yardstick, so that this check is about dropout alone. The random draw is the
    worker's: with dropout_p=0.5, each weight must be 0 or w / (1 - p), and the fraction dropped lie
    within 6 standard deviations of one half (256 weights)."""
    gen = _gen(206)
    lq, lk, p = 8, 16, 0.5
    q = torch.randn(2, lq, 4, generator=gen, dtype=torch.float64)
    k = torch.randn(2, lk, 4, generator=gen, dtype=torch.float64)
    value = torch.cat([torch.eye(lk, dtype=torch.float64), torch.ones(lk, 1, dtype=torch.float64)], -1).repeat(2, 1, 1)
    shapes = f"query (2, {lq}, 4), key (2, {lk}, 4), value = [identity | ones] (2, {lk}, {lk + 1})"
    close = lambda a, b: torch.allclose(a, b.to(a.dtype), rtol=1e-5, atol=1e-8)  # noqa: E731 (float32 answers too)

    def run(dropout_p):
        call = f"scaled_dot_product_attention({shapes}, dropout_p={dropout_p})"
        out, weights = expect.sequence(submission.call("scaled_dot_product_attention", q, k, value, dropout_p=dropout_p), 2, call)
        for tensor, shape, name in ((out, (2, lq, lk + 1), "output"), (weights, (2, lq, lk), "weights")):
            if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape or not bool(torch.isfinite(tensor).all()):
                raise expect.CheckFailed(_("the {name} of {call}: expected finite values of shape {shape}, got {tensor}",
                                           name=name, call=call, shape=shape, tensor=expect.describe(tensor)))
        return call, out, weights

    call, out0, weights0 = run(0.0)
    own = out0[..., :lk]  # the weights that met the values
    expect.true(close(own, weights0), _("{call}: with dropout_p=0 nothing is dropped: the output must be weights @ value",
                                        call=call))
    call, out, weights = run(p)
    dropped = out[..., :lk]
    # The weights returned: the softmax weights, or those after dropout (as nn.MultiheadAttention returns them).
    expect.true(close(weights, weights0) or close(weights, dropped),
                _("the weights returned by {call}: expected the softmax weights (the same as with dropout_p=0), "
                  "or the weights after dropout; got neither", call=call))
    expect.true(close(out[..., lk], dropped.sum(-1)),
                _("{call}: dropout zeroes attention WEIGHTS before they meet the values; yours looks applied to "
                  "the output", call=call))
    kept = dropped != 0
    if not (~kept).any():
        expect.true(close(dropped, own), _("{call}: no weight is 0 but the weights changed: dropout zeroes weights after the softmax, not "
                                           "the scores before it", call=call))
        raise expect.CheckFailed(_("{call}: dropout_p={p} dropped nothing: with dropout_p > 0, zero each weight with probability "
                                   "dropout_p (F.dropout) before multiplying with the values", call=call, p=p))
    expect.true(not close(dropped[kept], own[kept]),
                _("{call}: the weights that dropout keeps are divided by 1 - dropout_p (as F.dropout does), so "
                  "that their expected value does not change; yours are not rescaled", call=call))
    expect.true(close(dropped[kept], own[kept] / (1 - p)),
                _("{call}: each weight should be either 0 or its softmax value divided by 1 - dropout_p; yours "
                  "are neither (dropout belongs after the softmax, on the weights, not on the scores)",
                  call=call))
    fraction = 1 - kept.double().mean().item()
    expect.true(0.3 < fraction < 0.7, _("{call}: dropped a fraction {fraction:.2f} of the weights; dropout_p={p} drops each with "
                                        "probability 0.5", call=call, fraction=fraction, p=p))


# --------------------------------------------------------------------------- derive
def test_score_std(submission):
    got = submission.get("score_std_unscaled")
    exact = math.sqrt(64)  # q . k sums d_k = 64 products of independent N(0, 1) variables: variance 64
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        if abs(got - 64) < 1e-6:
            raise expect.CheckFailed(_("score_std_unscaled: that is the variance of q . k; the question asks for its "
                                       "standard deviation"))
        if abs(got - exact) > 1e-3 and abs(got - exact) < 0.05 * exact:
            raise expect.CheckFailed(_("score_std_unscaled: {got:g} looks like a sample estimate; the question asks for the exact "
                                       "value the variance argument gives (tolerance 0.001)", got=got))
    expect.number(got, exact, "score_std_unscaled", atol=1e-3, rtol=0)


# (d_k, sigma2): hidden cases, sigma2 != 1 in most, so that sigma2 and sigma2**2 differ
VARIANCE_CASES = ((16, 0.25), (100, 2.0), (3, 0.5), (512, 1.0), (7, 3.0))


def test_score_variance(submission):
    for d_k, sigma2 in VARIANCE_CASES:
        want = d_k * sigma2 ** 2  # d_k independent terms q_i k_i, each of variance E[q_i^2] E[k_i^2] = sigma2^2
        name = f"score_variance({d_k}, {sigma2})"
        got = submission.call("score_variance", d_k, sigma2)
        if isinstance(got, (int, float)) and not isinstance(got, bool) and not math.isclose(got, want, rel_tol=1e-9):
            hints = [(d_k * sigma2, _("each term q_i k_i is a product of two independent zero-mean variables of variance "
                                      "sigma2 each: what is the variance of such a product?")),
                     (math.sqrt(d_k) * sigma2, _("that looks like a standard deviation; the function returns a variance")),
                     (sigma2 ** 2, _("q . k is a sum of d_k such products"))]
            for wrong, hint in hints:
                if not math.isclose(wrong, want, rel_tol=1e-9) and math.isclose(got, wrong, rel_tol=1e-9):
                    raise expect.CheckFailed(_("{name}: {got:g} is not the expected value; {hint}",
                                               name=name, got=got, hint=hint))
        expect.number(got, want, name, atol=0, rtol=1e-9)


# --------------------------------------------------------------------------- predict
OVER_SCALED_CHOICES = ("one key", "uniform", "unchanged")


@functools.lru_cache(maxsize=None)  # a fixed seed: the same answer for every submission, sampled once per process
def over_scaled_truth(d_k: int = 1024, n_keys: int = 16, samples: int = 400) -> str:
    """Sampled here: the mean largest weight over 16 keys when the scores are divided by d_k, at
    d_k = 1024, against 1 (one key), 1/16 (uniform) and the same with sqrt(d_k) (unchanged)."""
    gen = _gen(207)
    q = torch.randn(samples, 1, d_k, generator=gen, dtype=torch.float64)
    k = torch.randn(samples, n_keys, d_k, generator=gen, dtype=torch.float64)
    scores = (q @ k.transpose(1, 2)).squeeze(1)  # (samples, n_keys)
    top = lambda s: torch.softmax(s, -1).max(-1).values.mean().item()  # noqa: E731
    over, scaled = top(scores / d_k), top(scores / math.sqrt(d_k))
    distance = {"one key": abs(over - 1), "uniform": abs(over - 1 / n_keys), "unchanged": abs(over - scaled)}
    return min(distance, key=distance.get)



def test_over_scaled_weights(submission):
    answer = expect.choice(submission.get("over_scaled_weights"), "over_scaled_weights", OVER_SCALED_CHOICES)
    expect.true(answer == over_scaled_truth(),
                _("over_scaled_weights: {answer!r} is not the expected answer. What is the variance of q . k / "
                  "d_k, and what does a softmax do with scores that spread that much?", answer=answer))


# --------------------------------------------------------------------------- variant
def general_mistakes(q, k, v, w, mask=None):
    raw = q @ w @ k.transpose(-2, -1)
    mistakes = [
        (*attention_from_scores(raw / math.sqrt(k.size(-1)), v, mask),
         _("Luong's general score is not scaled: score(q, k) = q^T W k, with no division by sqrt(d_k)")),
        (*attention_from_scores(raw, v, mask, dim=-2),
         _("the softmax runs over the keys (the last axis), so that each query's weights sum to 1; "
           "yours looks normalised over the queries (dim=-2)")),
    ]
    if w.size(0) == w.size(1):
        mistakes.append((*attention_from_scores(q @ w.T @ k.transpose(-2, -1), v, mask),
                         _("the score is query @ W @ key^T with W of shape (d_q, d_k); yours uses W transposed")))
    if mask is not None:
        mistakes.append((*attention_from_scores(raw, v, ~mask), _("the mask is True where a query MAY attend; yours looks inverted")))
    return mistakes


def test_general_attention(submission):
    gen = _gen(208)
    cases = [((2, 3), 4, 4, 5, 5, 3, torch.float64, None),  # square W: W and W^T give different scores
             ((2,), 3, 5, 4, 6, 2, torch.float32, None),  # d_q != d_k: W is (4, 6)
             ((3,), 2, 6, 3, 4, 5, torch.float64, "padding")]
    for batch, lq, lk, dq, dk, dv, dtype, kind in cases:
        q = torch.randn(*batch, lq, dq, generator=gen, dtype=dtype)
        k = torch.randn(*batch, lk, dk, generator=gen, dtype=dtype)
        v = torch.randn(*batch, lk, dv, generator=gen, dtype=dtype)
        w = torch.randn(dq, dk, generator=gen, dtype=dtype) / dq ** 0.5
        mask = None
        if kind == "padding":
            mask = (torch.arange(lk)[None, :] < torch.tensor([6, 3, 1])[:, None])[:, None, :]  # (B, 1, Lk)
        call = _("general_attention(query {q_shape}, key {k_shape}, value {v_shape}, W {w_shape}{padding}), {dtype}",
                 q_shape=tuple(q.shape), k_shape=tuple(k.shape), v_shape=tuple(v.shape), w_shape=tuple(w.shape),
                 padding=_(", a padding mask (3, 1, 6)") if mask is not None else "", dtype=dtype)
        args = (q, k, v, w) if mask is None else (q, k, v, w, mask)
        got = submission.call("general_attention", *args)
        mistakes = general_mistakes(q, k, v, w, mask) + float32_mistake(ref.general_attention, *args)
        _check_pair(got, *ref.general_attention(*args), call, mistakes)
