"""Checks for ps03_self_attention: single-head self-attention, additive (Bahdanau) attention,
their parameters, cross-attention, and what the order of the tokens changes.

The learner's modules live in the sandboxed worker. Each check builds one there, loads weights
chosen here into it (``load_state_dict``, strict: the parameter names must be the ones the notebook
asks for) and compares its outputs and weights with the reference on the same weights
(``attnlab.SelfAttention``, ``attnlab.AdditiveAttention``, ``attnlab.attention.CrossAttention``).

Kinds of work: implement (the two modules), derive (``additive_parameters``, and
``self_attention_parameters(d_model, d_k, d_v)`` on hidden sizes, against the reference's own
count), a variant the chapter describes but never shows (``CrossAttention``: queries from one
sequence, keys and values from another), and predict (``memory_order_effect``,
``causal_order_effect``: the truth is computed here by shuffling tokens through the reference).
When a wrong tensor is what a common mistake gives, the message names the broken contract; a
derived or predicted value never appears in a message.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import math

import torch

from attnlab.course.messages import _
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
    "test_self_attention_parameters": 2,
    "test_cross_attention": 3,
    "test_memory_order": 1,
    "test_causal_order": 1,
}

FLOAT32_TOLERANCE = (1e-5, 1e-4)  # (atol, rtol): what float32 arithmetic can be told apart from


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _load(module, state: dict, label: str, expected: str):
    try:
        module.method("load_state_dict", state)
    except AssertionError as exc:
        raise expect.CheckFailed(_("{label}: could not load weights named {expected} into your module: {exc}",
                                   label=label, expected=expected, exc=exc)) from None


def _self_attention(submission, d_model, d_k, d_v, gen, dtype=torch.float32):
    """The learner's SelfAttention with random weights, and those weights."""
    weights = {name: torch.randn(size, d_model, generator=gen, dtype=dtype) / d_model ** 0.5
               for name, size in (("w_q.weight", d_k), ("w_k.weight", d_k), ("w_v.weight", d_v))}
    label = f"SelfAttention({d_model}, {d_k}, {d_v})"
    mine = submission.new("SelfAttention", d_model, d_k, d_v)
    if dtype == torch.float64:
        mine.method("double")
    _load(mine, weights, label, _("w_q.weight ({d_k}, {d_model}), w_k.weight ({d_k}, {d_model}) and w_v.weight ({d_v}, {d_model}) "
                                  "(bias-free nn.Linear layers)", d_k=d_k, d_model=d_model, d_v=d_v))
    return mine, weights, label


def _attend(q, k, v, mask=None, scale=None, dim=-1):
    """Attention with the usual slips as options: another scale, the softmax over another axis."""
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.size(-1)) if scale is None else scale)
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=dim)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights


def _projections(w, x, memory=None):
    memory = x if memory is None else memory
    return x @ w["w_q.weight"].T, memory @ w["w_k.weight"].T, memory @ w["w_v.weight"].T


def _with_float32(mistakes, module_class, sizes, w, *inputs):
    """Add the mistake of computing in float32 and casting back, for float64 inputs."""
    if inputs[0].dtype == torch.float64:
        module = module_class(*sizes).float()
        module.load_state_dict({name: tensor.float() for name, tensor in w.items()})
        with torch.no_grad():
            out, weights = module(*(t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in inputs))
        mistakes.append((out.double(), weights.double(), _("computed in float32 and cast back: compute in the dtype of the "
                           "module and its inputs (float64 here, after .double()), the grader compares float64 results to "
                           "rtol=1e-7"), FLOAT32_TOLERANCE))
    return mistakes


def self_attention_mistakes(w, x, mask=None):
    """(output, weights, explanation) of the usual slips of single-head self-attention on these weights."""
    q, k, v = _projections(w, x)
    d_model, d_k = x.size(-1), q.size(-1)
    mistakes = [
        (*_attend(q, k, v, mask, dim=-2), _("the softmax runs over the keys (the last axis), so that each token's weights "
                                            "sum to 1; yours looks normalised over the queries (dim=-2)")),
        (*_attend(q, k, v, mask, scale=d_k), _("the scores are divided by sqrt(d_k), not by d_k")),
        (*_attend(q, k, v, mask, scale=1.0), _("the scores are divided by sqrt(d_k); yours look unscaled")),
        (*_attend(q, k, v, mask, scale=math.sqrt(d_model)), _("d_k is the size of the projected queries and keys, "
                                                              "not d_model")),
        (*_attend(k, q, v, mask), _("token i's scores are q_i . k_j over the keys j; yours look like k_i . q_j "
                                    "(queries and keys swapped)")),
        (*_attend(x, x, v, mask), _("the scores compare the projected queries x W_q with the projected keys x W_k, "
                                    "not x with itself")),
    ]
    if v.size(-1) == d_k:
        mistakes.append((*_attend(q, v, v, mask), _("the keys come from w_k, not from w_v")))
    if mask is not None:
        mistakes += [(*_attend(q, k, v, ~mask), _("the mask is True where a token MAY attend; yours looks inverted")),
                     (*_attend(q, k, v), _("masked keys must get weight 0; the mask looks ignored"))]
    return mistakes


def _compare_pair(got, want_out, want_weights, call, mistakes):
    out, weights = expect.sequence(got, 2, call)
    swapped = [(want_out, _("the module returns the pair (output, weights), in this order"))]
    expect.tensor_or_mistake(weights, want_weights, _("the weights returned by {call}", call=call),
                             swapped + [(m[1], m[2], *m[3:]) for m in mistakes])
    expect.tensor_or_mistake(out, want_out, _("the output returned by {call}", call=call), [(m[0], m[2], *m[3:]) for m in mistakes])


def _check_self_attention(submission, d_model, d_k, d_v, x, gen, mask=None, what=""):
    mine, w, label = _self_attention(submission, d_model, d_k, d_v, gen, x.dtype)
    call = _("{label} applied to x of shape {x_shape}, {x_dtype}{what}",
             label=label, x_shape=tuple(x.shape), x_dtype=x.dtype, what=what)
    got = mine(x) if mask is None else mine(x, mask)
    reference = ref.SelfAttention(d_model, d_k, d_v).to(x.dtype)
    reference.load_state_dict(w)
    with torch.no_grad():
        want_out, want_weights = reference(x, mask)
    mistakes = _with_float32(self_attention_mistakes(w, x, mask), ref.SelfAttention, (d_model, d_k, d_v), w, x, mask)
    _compare_pair(got, want_out, want_weights, call, mistakes)


def test_self_attention_shapes(submission):
    gen = _gen(301)
    mine, _unused, label = _self_attention(submission, 8, 4, 3, gen)
    call = _("{label} applied to x of shape (2, 5, 8)", label=label)
    out, weights = expect.sequence(mine(torch.randn(2, 5, 8, generator=gen)), 2, call)
    for value, shape, name in ((out, (2, 5, 3), "output"), (weights, (2, 5, 5), "weights")):
        if not isinstance(value, torch.Tensor):
            raise expect.CheckFailed(_("the {name} of {call}: expected a tensor, got {value}",
                                       name=name, call=call, value=expect.describe(value)))
        expect.true(tuple(value.shape) == shape, _("the {name} of {call}: expected shape {shape}, got {value_shape}",
                                                   name=name, call=call, shape=shape, value_shape=tuple(value.shape)))
    # d_v left out: it defaults to d_k (not d_model)
    call = _("SelfAttention(6, 3) (d_v left out) applied to x of shape (2, 4, 6)")
    out, _unused = expect.sequence(submission.new("SelfAttention", 6, 3)(torch.randn(2, 4, 6, generator=gen)), 2, call)
    if not isinstance(out, torch.Tensor):
        raise expect.CheckFailed(_("the output of {call}: expected a tensor, got {out}",
                                   call=call, out=expect.describe(out)))
    expect.true(tuple(out.shape) == (2, 4, 3), _("the output of {call}: expected shape (2, 4, 3), got {out_shape}: when d_v is None, it is d_k",
                                                 call=call, out_shape=tuple(out.shape)))


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
    _check_self_attention(submission, 8, 4, 4, x, gen, causal, _(" with a causal mask (5, 5)"))
    padding = (torch.arange(5)[None, :] < torch.tensor([5, 3])[:, None])[:, None, :]  # (2, 1, 5)
    _check_self_attention(submission, 8, 4, 6, x, gen, padding, _(" with a padding mask (2, 1, 5)"))


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
          _("w_q.weight ({hidden_dim}, {query_dim}), w_k.weight ({hidden_dim}, {key_dim}) and v.weight (1, "
            "{hidden_dim}) (bias-free nn.Linear layers)",
            hidden_dim=hidden_dim, query_dim=query_dim, key_dim=key_dim))
    return reference, mine, label


def additive_mistakes(reference, q, k, v, mask=None):
    """(output, weights, explanation) of the usual slips of additive attention with these weights."""
    with torch.no_grad():
        projected = reference.w_q(q).unsqueeze(2) + reference.w_k(k).unsqueeze(1)  # (B, Lq, Lk, H)
        scores = reference.v(torch.tanh(projected)).squeeze(-1)  # (B, Lq, Lk)
        linear = reference.v(projected).squeeze(-1)

        def attend(s, m=mask, dim=-1):
            return _attend_scores(s, v, m, dim)

        mistakes = [
            (*attend(scores, dim=-2), _("the softmax runs over the keys (the last axis), so that each query's weights "
                                        "sum to 1; yours looks normalised over the queries (dim=-2)")),
            (*attend(linear), _("the score is v^T tanh(W_q q + W_k k): yours has no tanh")),
        ]
        if mask is not None:
            mistakes += [(*attend(scores, None), _("masked keys must get weight 0; yours look ignored")),
                         (*attend(scores, ~mask), _("the mask is True where a query MAY attend; yours looks inverted"))]
    return mistakes


def _attend_scores(scores, v, mask=None, dim=-1):
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=dim)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights


def _check_additive(submission, dims, shapes, gen, seed, dtype=torch.float32, mask=None, what=""):
    reference, mine, label = _additive_pair(submission, *dims, seed, dtype)
    q, k, v = (torch.randn(*shape, generator=gen, dtype=dtype) for shape in shapes)
    args = (q, k, v) if mask is None else (q, k, v, mask)
    call = _("{label} applied to query {q_shape}, key {k_shape}, value {v_shape}, {dtype}{what}",
             label=label, q_shape=tuple(q.shape), k_shape=tuple(k.shape), v_shape=tuple(v.shape), dtype=dtype, what=what)
    got = mine(*args)
    with torch.no_grad():
        want_out, want_weights = reference(*args)
    mistakes = _with_float32(additive_mistakes(reference, q, k, v, mask), ref.AdditiveAttention, dims,
                             dict(reference.state_dict()), *args)
    _compare_pair(got, want_out, want_weights, call, mistakes)


def test_additive_values(submission):
    gen = _gen(304)
    _check_additive(submission, (3, 5, 4), ((2, 4, 3), (2, 6, 5), (2, 6, 2)), gen, 304)
    _check_additive(submission, (8, 8, 16), ((1, 1, 8), (1, 5, 8), (1, 5, 8)), gen, 305, torch.float64)
    _check_additive(submission, (6, 4, 5), ((3, 2, 6), (3, 3, 4), (3, 3, 7)), gen, 306, torch.float64)


def test_additive_mask(submission):
    gen = _gen(307)
    padding = (torch.arange(6)[None, :] < torch.tensor([6, 2, 4])[:, None])[:, None, :]  # (3, 1, 6)
    _check_additive(submission, (4, 6, 8), ((3, 2, 4), (3, 6, 6), (3, 6, 3)), gen, 307, torch.float64, padding,
                    _(" with a padding mask (3, 1, 6)"))


def test_additive_parameter_count(submission):
    got = submission.get("additive_parameters")
    # W_q (64 x 32), W_k (64 x 48) and v (1 x 64), all without bias
    expect.number(got, 32 * 64 + 48 * 64 + 64, "additive_parameters", atol=0, rtol=0)


# --------------------------------------------------------------------------- derive: parameters
PARAMETER_CASES = ((512, 64, 64), (16, 8, None), (10, 3, 7), (1, 1, None), (96, 12, 40))


def test_self_attention_parameters(submission):
    for d_model, d_k, d_v in PARAMETER_CASES:
        want = sum(p.numel() for p in ref.SelfAttention(d_model, d_k, d_v).parameters())  # counted, not a formula
        name = f"self_attention_parameters({d_model}, {d_k}, {d_v})"
        got = submission.call("self_attention_parameters", d_model, d_k, d_v)
        d_v_ = d_k if d_v is None else d_v
        if isinstance(got, int) and not isinstance(got, bool) and got != want:
            for wrong, hint in ((want + 2 * d_k + d_v_, _("the three projections are bias-free")),
                                (3 * d_model * d_k, _("w_v maps d_model to d_v, which need not be d_k")),
                                (3 * d_model * d_v_ if d_v_ != d_k else -1, _("w_q and w_k map d_model to d_k"))):
                if got == wrong:
                    raise expect.CheckFailed(_("{name}: {got} is not the expected value; {hint}",
                                               name=name, got=got, hint=hint))
        expect.number(got, want, name, atol=0, rtol=0)


# --------------------------------------------------------------------------- variant: cross-attention
def cross_attention_mistakes(w, x, memory, mask=None):
    """(output, weights, explanation) of the usual slips of cross-attention on these weights."""
    q, k, v = _projections(w, x, memory)
    mistakes = [(*_attend(q, k, v, mask, scale=1.0), _("the scores are divided by sqrt(d_k); yours look unscaled")),
                (*_attend(q, k, v, mask, dim=-2), _("the softmax runs over the keys (the memory's tokens, the last axis); "
                                                    "yours looks normalised over the queries (dim=-2)"))]
    if x.size(1) == memory.size(1):  # the same lengths: roles mixed up give tensors of the right shapes
        qx, kx, vx = _projections(w, x)
        qm, _unused, _unused = _projections(w, memory)
        mistakes += [
            (*_attend(qx, kx, vx, mask), _("keys and values come from memory; yours come from x (that is self-attention)")),
            (*_attend(qx, k, vx, mask), _("the values come from memory, like the keys; yours come from x")),
            (*_attend(qm, kx, vx, mask), _("the queries come from x and the keys and values from memory; yours have the "
                                           "roles the other way round")),
        ]
    if mask is not None:
        mistakes += [(*_attend(q, k, v, ~mask), _("the mask is True where a query MAY attend; yours looks inverted")),
                     (*_attend(q, k, v), _("the memory's masked tokens must get weight 0; the mask looks ignored"))]
    return mistakes


def _check_cross_attention(submission, d_model, d_k, d_v, x, memory, gen, mask=None, what=""):
    dtype = x.dtype
    w = {name: torch.randn(size, d_model, generator=gen, dtype=dtype) / d_model ** 0.5
         for name, size in (("w_q.weight", d_k), ("w_k.weight", d_k), ("w_v.weight", d_v))}
    label = f"CrossAttention({d_model}, {d_k}, {d_v})"
    mine = submission.new("CrossAttention", d_model, d_k, d_v)
    if dtype == torch.float64:
        mine.method("double")
    _load(mine, w, label, _("w_q.weight ({d_k}, {d_model}), w_k.weight ({d_k}, {d_model}) and w_v.weight ({d_v}, {d_model}) "
                            "(the bias-free nn.Linear layers of SelfAttention)",
                            d_k=d_k, d_model=d_model, d_v=d_v))
    call = _("{label} applied to x {x_shape} and memory {memory_shape}, {dtype}{what}",
             label=label, x_shape=tuple(x.shape), memory_shape=tuple(memory.shape), dtype=dtype, what=what)
    got = mine(x, memory) if mask is None else mine(x, memory, mask)
    reference = ref.CrossAttention(d_model, d_k, d_v).to(dtype)
    reference.load_state_dict(w)
    with torch.no_grad():
        want_out, want_weights = reference(x, memory, mask)
    mistakes = _with_float32(cross_attention_mistakes(w, x, memory, mask), ref.CrossAttention, (d_model, d_k, d_v),
                             w, x, memory, mask)
    _compare_pair(got, want_out, want_weights, call, mistakes)


def test_cross_attention(submission):
    gen = _gen(308)
    x, memory = torch.randn(2, 4, 8, generator=gen, dtype=torch.float64), torch.randn(2, 4, 8, generator=gen, dtype=torch.float64)
    _check_cross_attention(submission, 8, 4, 4, x, memory, gen)  # equal lengths first: mixed-up roles keep their shapes
    x, memory = torch.randn(2, 3, 8, generator=gen), torch.randn(2, 5, 8, generator=gen)
    _check_cross_attention(submission, 8, 4, 6, x, memory, gen)
    x, memory = torch.randn(3, 2, 6, generator=gen, dtype=torch.float64), torch.randn(3, 6, 6, generator=gen, dtype=torch.float64)
    padding = (torch.arange(6)[None, :] < torch.tensor([6, 3, 1])[:, None])[:, None, :]  # (3, 1, 6): the memory's padding
    _check_cross_attention(submission, 6, 3, 5, x, memory, gen, padding, _(" with a padding mask (3, 1, 6) over the memory"))


# --------------------------------------------------------------------------- predict: the order of the tokens
ORDER_CHOICES = ("unchanged", "permuted the same way", "changed otherwise")


def _order_effect(out: torch.Tensor, shuffled: torch.Tensor, perm: torch.Tensor) -> str:
    if torch.allclose(shuffled, out, rtol=1e-9, atol=1e-12):
        return "unchanged"
    if shuffled.shape == out.shape and torch.allclose(shuffled, out[:, perm], rtol=1e-9, atol=1e-12):
        return "permuted the same way"
    return "changed otherwise"


def memory_order_truth() -> str:
    """Computed here: CrossAttention's outputs before and after shuffling the memory's tokens."""
    torch.manual_seed(309)
    cross = ref.CrossAttention(8, 4, 4).double()
    gen = _gen(309)
    x, memory = torch.randn(1, 3, 8, generator=gen, dtype=torch.float64), torch.randn(1, 6, 8, generator=gen, dtype=torch.float64)
    perm = torch.tensor([5, 2, 0, 4, 1, 3])
    with torch.no_grad():
        return _order_effect(cross(x, memory)[0], cross(x, memory[:, perm])[0], perm)


def causal_order_truth() -> str:
    """Computed here: causal self-attention's outputs before and after reversing the tokens of x."""
    torch.manual_seed(310)
    attention = ref.SelfAttention(8, 4).double()
    x = torch.randn(1, 5, 8, generator=_gen(310), dtype=torch.float64)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    perm = torch.arange(4, -1, -1)
    with torch.no_grad():
        return _order_effect(attention(x, causal)[0], attention(x[:, perm], causal)[0], perm)



def test_memory_order(submission):
    answer = expect.choice(submission.get("memory_order_effect"), "memory_order_effect", ORDER_CHOICES)
    expect.true(answer == memory_order_truth(),
                _("memory_order_effect: {answer!r} is not the expected answer. Follow one query: which of its "
                  "scores and weights move when the memory's tokens move, and what does its weighted sum become?",
                  answer=answer))


def test_causal_order(submission):
    answer = expect.choice(submission.get("causal_order_effect"), "causal_order_effect", ORDER_CHOICES)
    expect.true(answer == causal_order_truth(),
                _("causal_order_effect: {answer!r} is not the expected answer. Follow the first token of the "
                  "shuffled sequence: which tokens may it attend to, before and after the shuffle?",
                  answer=answer))
