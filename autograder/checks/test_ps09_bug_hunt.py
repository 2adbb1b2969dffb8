"""Checks for ps09_bug_hunt: the symptoms the learner measured on three broken snippets, and the
learner's fixed attention, multi-head attention and positional encoding.

The bug hunt gives the learner broken code and tools to measure it, never the fixed code: the
notebook holds no correct version of the three functions the learner fixes (nor of ``masked_softmax``),
only the snippets below, the probe inputs, and PyTorch's own attention as an oracle.

The rule for the snippets: they are written for this assignment, here (the trusted side measures the
very code the notebook shows, through ``#| snippet-from:``, which renames each one and strips its
docstring and ``# BUG`` comments). Each carries bugs of the kinds published tutorials contain (the
seeds' list of ``attnlab.course.bugs``: heads cut from the raw inputs, a dead ``int(sqrt(d_head))``,
sin + cos summed with no feature index; and the classic -inf mask and hard-coded axes), in code that
appendix A does not print: ``tests/test_checks_ps09_bug_hunt.py`` fails if a substantive line of a
snippet occurs in ``book/appA_bug_hunt.md`` or ``attnlab/course/bugs.py``. Appendix A teaches the
catalogue; the notebook names the function each snippet tries to be, never its bug.

Symptoms: each question offers five measurable statements about one snippet on the notebook's probe
input; the learner answers with the letters of those that hold (``"be"``). The truth is measured here
by running the snippet on the same input (``*_symptoms_of``), not read from the learner's notebook.
Fixes: the learner's functions run in the worker on inputs chosen here and are compared with the
reference (``attnlab``); when a wrong answer matches a known wrong convention, the message names it.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from attnlab.course.messages import _
from autograder.checks import expect
from attnlab import attention as ref_attention
from attnlab import positional as ref_positional
from attnlab.attention import scaled_dot_product_attention  # what the multi-head snippet calls here
from attnlab.multihead import MultiHeadAttention

ASSIGNMENT = "ps09_bug_hunt"

POINTS = {
    "test_attention_symptoms": 2,
    "test_fixed_attention": 2,
    "test_fixed_attention_fully_masked": 1,
    "test_multihead_symptoms": 2,
    "test_fixed_multihead": 3,
    "test_encoding_symptoms": 1,
    "test_fixed_positional_encoding": 2,
}

LETTERS = "abcde"


# ------------------------------------------------------------------ the snippets (shown anonymously)
def attention_snippet(query, key, value, mask=None):
    """Counts axes from the front (d_k = key.size(1), transpose(1, 2)): right only for 3-D inputs whose
    key length equals d_k, a crash for (B, h, L, d_k); and fills masked scores with -inf: NaN for a
    query with no allowed key."""
    d_k = key.size(1)  # BUG: the features are the last axis; axis 1 is the key length (or the heads)
    scores = torch.matmul(query, key.transpose(1, 2)) / math.sqrt(d_k)  # BUG: transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), float("-inf"))  # BUG: softmax of a row of -inf is 0/0
    weights = F.softmax(scores, dim=-1)
    return torch.matmul(weights, value), weights


class multihead_snippet(nn.Module):
    """Cuts the raw query, key and value into heads (W_q, W_k, W_v never used, as in a published
    tutorial), keeps its dead int(sqrt(d_head)), and merges the heads with a reshape that mixes positions."""

    def __init__(self, d_model, num_heads):
        super().__init__()
        self.d_model, self.num_heads = d_model, num_heads
        self.d_head = d_model // num_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        sqrt_d_head = int(math.sqrt(self.d_head))  # BUG (dead code, harmless): computed, never used
        heads = [torch.stack(t.chunk(self.num_heads, dim=-1), dim=1) for t in (query, key, value)]  # BUG: no W_q, W_k, W_v
        out, weights = scaled_dot_product_attention(heads[0], heads[1], heads[2], mask)  # (B, h, Lq, d_head)
        merged = out.reshape(query.size(0), query.size(1), self.d_model)  # BUG: move the head axis back first
        return self.w_o(merged), weights


def encoding_snippet(max_len, d_model):
    """Sums sin and cos of one angle per position, pos / 10000^(2/3), with no feature index (a
    published tutorial's formula): every feature holds the same number, up to sqrt(2)."""
    table = torch.zeros(max_len, d_model)
    for pos in range(max_len):
        angle = pos / 10000 ** (2 / 3)  # BUG: the exponent is 2i / d_model, one frequency per feature pair i
        table[pos, :] = math.sin(angle) + math.cos(angle)  # BUG: sin goes to feature 2i, cos to 2i + 1
    return table


# ------------------------------------------------------------------ given tools (shown in the notebook)
def attention_probe():
    """The probe of section 1: two batch items, three queries, five keys of d_k = 4 (float64).
    In item 0 the last two keys are padding; in item 1, query 2 may attend to no key at all.
    Also a 4-D version with heads, (B, h, L, d_k) = (2, 2, 3, 4), without a mask."""
    gen = torch.Generator().manual_seed(9)
    query = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64)  # (B, Lq, d_k)
    key = torch.randn(2, 5, 4, generator=gen, dtype=torch.float64)  # (B, Lk, d_k)
    value = torch.randn(2, 5, 2, generator=gen, dtype=torch.float64)  # (B, Lk, d_v)
    mask = torch.ones(2, 3, 5, dtype=torch.bool)  # (B, Lq, Lk), True = may attend
    mask[0, :, 3:] = False
    mask[1, 2, :] = False
    heads = tuple(torch.randn(2, 2, 3, 4, generator=gen, dtype=torch.float64) for _unused in range(3))  # (B, h, L, d_k)
    return query, key, value, mask, heads


def multihead_probe():
    """The probe of section 2: x (1, 6, 16) in float64, and a causal mask (6, 6), True = may attend."""
    x = torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    return x, causal


def pytorch_twin(module):
    """PyTorch's nn.MultiheadAttention (batch_first) holding the weights of ``module`` (its w_q, w_k,
    w_v and w_o), to compare with. Careful: its boolean attn_mask means True = may NOT attend."""
    twin = nn.MultiheadAttention(module.d_model, module.num_heads, batch_first=True)
    twin = twin.to(module.w_q.weight.dtype)
    with torch.no_grad():
        twin.in_proj_weight.copy_(torch.cat([module.w_q.weight, module.w_k.weight, module.w_v.weight]))
        twin.in_proj_bias.copy_(torch.cat([module.w_q.bias, module.w_k.bias, module.w_v.bias]))
        twin.out_proj.weight.copy_(module.w_o.weight)
        twin.out_proj.bias.copy_(module.w_o.bias)
    return twin.train()  # dropout is 0; train mode keeps PyTorch off its different inference fast path


# ------------------------------------------------------------------ the symptoms, measured here
def attention_symptoms_of(fn) -> set[str]:
    """Which of the five statements of section 1 hold for the attention function ``fn``."""
    query, key, value, mask, heads = attention_probe()
    found = set()
    try:
        fn(*heads)
    except Exception:  # noqa: BLE001  (any error counts: the statement is "raises an error")
        found.add("a")
    out, weights = fn(query, key, value, mask)
    if torch.isnan(out).any():
        found.add("b")
    may_attend = mask.any(-1)  # (B, Lq): queries with at least one allowed key
    sums = weights.sum(-1)
    if ((sums - 1).abs() > 1e-6)[may_attend & torch.isfinite(sums)].any():
        found.add("c")
    hidden = weights.masked_fill(mask, 0.0)
    if (torch.isfinite(hidden) & (hidden > 1e-6)).any():
        found.add("d")
    every_key = mask.all(-1)  # (B, Lq): queries whose keys are all allowed
    oracle = F.scaled_dot_product_attention(query, key, torch.eye(5, dtype=torch.float64).expand(2, 5, 5))
    if ((weights - oracle).abs() > 1e-6)[every_key].any():
        found.add("e")
    return found


def multihead_symptoms_of(cls) -> set[str]:
    """Which of the five statements of section 2 hold for the module class ``cls``."""
    x, causal = multihead_probe()
    module = cls(16, 4).double()  # any weights give the same answers: no seed (the grader's threads share it)
    found = set()
    try:
        out, weights = module(x, x, x)
    except Exception:  # noqa: BLE001
        return {"b"}
    out.sum().backward()
    if any(p.weight.grad is None or not p.weight.grad.any() for p in (module.w_q, module.w_k, module.w_v)):
        found.add("a")
    if ((weights.sum(-1) - 1).abs() > 1e-6).any():
        found.add("c")
    changed = x.clone()
    changed[0, -1] += 1.0
    with torch.no_grad():
        before, after = module(x, x, x, causal)[0], module(changed, changed, changed, causal)[0]
    if ((after - before)[0, :-1].abs() > 1e-9).any():
        found.add("d")
    if tuple(out.shape) != (1, 6, 16):
        found.add("e")
    return found


def encoding_symptoms_of(fn) -> set[str]:
    """Which of the five statements of section 3 hold for the encoding function ``fn``."""
    pe = fn(50, 16)
    found = set()
    if tuple(pe.shape) != (50, 16):
        found.add("a")
    if (pe == pe[:, :1]).all():
        found.add("b")
    if not pe[0].any():
        found.add("c")
    if pe.dtype != torch.float32:
        found.add("d")
    if (pe.abs() > 1 + 1e-6).any():
        found.add("e")
    return found


# ------------------------------------------------------------------ checks: symptoms
def _letters(submission, name: str) -> set[str]:
    got = submission.get(name)
    if isinstance(got, (list, tuple)) and all(isinstance(item, str) for item in got):
        got = "".join(got)  # ["a", "d"] says the same as "ad"
    if not isinstance(got, str):
        raise expect.CheckFailed(_('{name}: expected a string of letters such as "ad", got {got}',
                                   name=name, got=expect.describe(got)))
    letters = {c for c in got.lower() if c.isalnum()}
    if not letters or not letters <= set(LETTERS):
        raise expect.CheckFailed(_('{name}: expected letters among {letters} (such as "ad"), got {got!r}',
                                   name=name, letters=', '.join(LETTERS), got=got))
    return letters


def _symptoms(submission, name: str, snippet: str, truth: set[str]) -> None:
    got = _letters(submission, name)
    if got == truth:
        return
    if got < truth:
        kind = _("it shows a symptom you did not list")
    elif got > truth:
        kind = _("you listed a symptom it does not show")
    else:
        kind = _("some letters you listed it does not show, and it shows others you did not list")
    raise expect.CheckFailed(_("{name}: not the symptoms {snippet} shows on the probe input ({kind}); measure each statement "
                               "on the given input instead of reading the code",
                               name=name, snippet=snippet, kind=kind))


def test_attention_symptoms(submission):
    _symptoms(submission, "attention_symptoms", "attention_v1", attention_symptoms_of(attention_snippet))


def test_multihead_symptoms(submission):
    _symptoms(submission, "multihead_symptoms", "MultiHeadAttentionV1", multihead_symptoms_of(multihead_snippet))


def test_encoding_symptoms(submission):
    _symptoms(submission, "encoding_symptoms", "encoding_v1", encoding_symptoms_of(encoding_snippet))


# ------------------------------------------------------------------ checks: the fixed attention
def _matches(got, candidate: torch.Tensor) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == candidate.shape and got.dtype == candidate.dtype
            and torch.isfinite(got).all().item() and torch.allclose(got, candidate, atol=1e-5, rtol=1e-4))


def _check_attention(submission, q, k, v, mask, what):
    call = _("scaled_dot_product_attention({what})", what=what)
    out, weights = expect.sequence(submission.call("scaled_dot_product_attention", q, k, v, mask), 2, call)
    want_out, want_weights = ref_attention.scaled_dot_product_attention(q, k, v, mask)
    if isinstance(weights, torch.Tensor) and weights.shape == want_weights.shape and weights.isnan().any():
        raise expect.CheckFailed(_("the weights returned by {call} contain NaN. Contract: a query whose keys are all masked gets "
                                   "zero weights and a zero output (softmax of a row of -inf is 0/0)",
                                   call=call))
    by_length = ref_attention.masked_softmax(q @ k.transpose(-2, -1) / math.sqrt(k.size(-2)), mask)
    try:
        expect.tensor(weights, want_weights, _("the weights returned by {call}", call=call))
    except expect.CheckFailed as exc:
        if _matches(weights, by_length):
            raise expect.CheckFailed(_("{exc}. The scores are divided by sqrt(d_k), d_k the size of the last axis of query and key, "
                                       "not by the square root of the key length", exc=exc)) from None
        raise
    expect.tensor(out, want_out, _("the output returned by {call}", call=call))


def test_fixed_attention(submission):
    gen = torch.Generator().manual_seed(901)
    for batch, lq, lk, d, dtype in (((3,), 4, 6, 8, torch.float32), ((2, 2), 5, 7, 4, torch.float64)):
        q = torch.randn(*batch, lq, d, generator=gen, dtype=dtype)
        k = torch.randn(*batch, lk, d, generator=gen, dtype=dtype)
        v = torch.randn(*batch, lk, 3, generator=gen, dtype=dtype)
        mask = torch.rand(*batch, lq, lk, generator=gen) > 0.4
        mask[..., 0] = True  # every query keeps a key: fully masked rows are the next check
        shape = f"query {tuple(q.shape)}, key {tuple(k.shape)}, {dtype}"
        _check_attention(submission, q, k, v, mask, _("{shape}, a random mask", shape=shape))
        _check_attention(submission, q, k, v, None, f"{shape}, mask=None")
    q, k, v = (torch.randn(2, 2, 4, 8, generator=gen, dtype=torch.float64) for _unused in range(3))
    causal = torch.ones(4, 4, dtype=torch.bool).tril()  # (Lq, Lk): broadcast over batch and heads
    _check_attention(submission, q, k, v, causal, _("query (2, 2, 4, 8), a causal mask of shape (4, 4)"))


def test_fixed_attention_fully_masked(submission):
    gen = torch.Generator().manual_seed(902)
    q, k, v = (torch.randn(2, 3, 3, generator=gen, dtype=torch.float64) for _unused in range(3))  # d_k = Lk = 3
    mask = torch.ones(2, 3, 3, dtype=torch.bool)
    mask[0, 1] = False
    mask[1, :, 1:] = False
    _check_attention(submission, q, k, v, mask, _("query (2, 3, 3), a mask in which query 1 of item 0 may attend to nothing"))


# ------------------------------------------------------------------ checks: the fixed multi-head attention
def _reference_module(d_model, num_heads, seed, dtype):
    ref = MultiHeadAttention(d_model, num_heads).to(dtype).eval()
    gen = torch.Generator().manual_seed(seed)  # a generator of its own: the grader's threads share the global one
    with torch.no_grad():
        for parameter in ref.parameters():
            parameter.uniform_(-d_model ** -0.5, d_model ** -0.5, generator=gen)
    return ref


def _multihead_conventions(ref, query, key, value, mask) -> dict[str, torch.Tensor]:
    """Outputs of the usual wrong ways to split and merge heads, keyed by the contract each breaks."""
    B, Lq, _unused = query.shape
    h, d = ref.num_heads, ref.d_head

    def run(project, split, merge):
        q, k, v = ((layer(t) if project else t) for layer, t in ((ref.w_q, query), (ref.w_k, key), (ref.w_v, value)))
        out, _unused = ref_attention.scaled_dot_product_attention(split(q), split(k), split(v), mask)  # (B, h, Lq, d)
        return ref.w_o(merge(out))

    contiguous = lambda t: t.view(t.size(0), t.size(1), h, d).transpose(1, 2)  # noqa: E731
    interleaved = lambda t: t.view(t.size(0), t.size(1), d, h).permute(0, 3, 1, 2)  # noqa: E731
    merge = lambda o: o.transpose(1, 2).reshape(B, Lq, h * d)  # noqa: E731
    with torch.no_grad():
        return {
            _("Every head reads projected inputs: query W_q, key W_k and value W_v, then cut into heads"):
                run(False, contiguous, merge),
            _("Merging the heads must move the head axis back next to d_head (transpose(1, 2)) before the reshape; "
              "a reshape alone mixes positions"): run(True, contiguous, lambda o: o.reshape(B, Lq, h * d)),
            _("Heads are contiguous slices of d_model: head i holds features i * d_head to (i + 1) * d_head - 1"):
                run(True, interleaved, lambda o: o.permute(0, 2, 3, 1).reshape(B, Lq, h * d)),
        }


def _check_multihead(submission, d_model, num_heads, seed, dtype, query, key, value, mask, what):
    ref = _reference_module(d_model, num_heads, seed, dtype)
    label = f"MultiHeadAttention({d_model}, {num_heads})"
    mine = submission.new("MultiHeadAttention", d_model, num_heads)
    mine.method("eval")
    if dtype == torch.float64:
        mine.method("double")
    try:
        mine.method("load_state_dict", dict(ref.state_dict()))
    except AssertionError as exc:
        raise expect.CheckFailed(
            _("{label}: the reference weights (w_q, w_k, w_v, w_o: nn.Linear({d_model}, {d_model}) with bias, "
              "as in MultiHeadAttentionV1) could not be loaded into your module: {exc}",
              label=label, d_model=d_model, exc=exc)) from None
    args = (query, key, value) if mask is None else (query, key, value, mask)
    call = _("{label} applied to {what}", label=label, what=what)
    out, weights = expect.sequence(mine(*args), 2, call)
    with torch.no_grad():
        want_out, want_weights = ref(*args)
    try:
        expect.tensor(out, want_out, _("the output returned by {call}", call=call))
    except expect.CheckFailed as exc:
        for contract, candidate in _multihead_conventions(ref, query, key, value, mask).items():
            if _matches(out, candidate.to(dtype)):
                raise expect.CheckFailed(_("{failure}. {contract}", failure=exc.args[0], contract=contract)) from None
        raise
    expect.tensor(weights, want_weights, _("the per-head weights returned by {call} (B, num_heads, Lq, Lk)",
                                           call=call))


def test_fixed_multihead(submission):
    gen = torch.Generator().manual_seed(903)
    x = torch.randn(2, 6, 16, generator=gen, dtype=torch.float64)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    _check_multihead(submission, 16, 4, 1, torch.float64, x, x, x, causal, _("x (2, 6, 16), float64, a causal mask (6, 6)"))
    query = torch.randn(2, 5, 24, generator=gen, dtype=torch.float64)
    memory = torch.randn(2, 7, 24, generator=gen, dtype=torch.float64)
    keep = torch.arange(7)[None, :] < torch.tensor([7, 4])[:, None]
    _check_multihead(submission, 24, 3, 2, torch.float64, query, memory, memory, keep[:, None, None, :],
                     _("query (2, 5, 24), key = value (2, 7, 24) (cross-attention), float64, a padding mask (2, 1, 1, 7)"))
    x = torch.randn(3, 4, 32, generator=gen)
    _check_multihead(submission, 32, 4, 3, torch.float32, x, x, x, None, "x (3, 4, 32), float32, mask=None")


# ------------------------------------------------------------------ checks: the fixed positional encoding
def test_fixed_positional_encoding(submission):
    for max_len, d_model in ((50, 16), (7, 4), (128, 64), (1, 2)):
        call = f"sinusoidal_positional_encoding({max_len}, {d_model})"
        got = submission.call("sinusoidal_positional_encoding", max_len, d_model)
        want = ref_positional.sinusoidal_positional_encoding(max_len, d_model)
        halves = torch.cat([want[:, 0::2], want[:, 1::2]], dim=1)  # sines first, then cosines
        try:
            expect.tensor(got, want, call)
        except expect.CheckFailed as exc:
            if d_model > 2 and _matches(got, halves):
                raise expect.CheckFailed(_("{exc}. Sines and cosines are interleaved: sin on feature 2i, cos on feature 2i + 1, not all "
                                           "sines first", exc=exc)) from None
            raise
