"""Checks for ps04_multihead: the MultiHeadAttention module, its parameter and FLOP counts, a
prediction about its weights, and the packed self-attention variant.

The learner's modules live in the sandboxed worker; each check builds one there, loads weights drawn
here into it (``load_state_dict``, strict) and compares its outputs and per-head weights with
``attnlab.multihead`` on inputs chosen here. When a wrong output equals what a common wrong
convention computes with the same weights (heads made of every h-th feature instead of contiguous
slices, scores divided by sqrt(d_model), raw inputs cut into heads with no projections, inputs
projected twice, ...), the message names the broken contract. The derive and predict answers are
compared with FlopCounterMode run on the reference and with experiments on the reference module run
here; their messages never contain the expected value.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from attnlab.course.messages import _
from autograder.checks import expect
from autograder.protocol import StudentError
from attnlab.attention import masked_softmax
from attnlab.multihead import MultiHeadAttention, PackedSelfAttention

ASSIGNMENT = "ps04_multihead"

POINTS = {
    "test_mha_init": 1,
    "test_mha_parameters": 1,
    "test_mha_split_merge": 1,
    "test_mha_self_attention": 2,
    "test_mha_cross_attention": 2,
    "test_mha_mask": 2,
    "test_mha_dropout": 1,
    "test_mha_parameter_count": 1,
    "test_mha_flops": 2,
    "test_mha_unchanged": 2,
    "test_packed_self_attention": 3,
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randomise(module: torch.nn.Module, d_model: int, seed: int) -> None:
    gen = _gen(seed)  # a generator of its own: no global seeding in the grader's threads
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.uniform_(-d_model ** -0.5, d_model ** -0.5, generator=gen)


def _load(mine, ref, label: str, layout: str) -> None:
    try:
        mine.method("load_state_dict", dict(ref.state_dict()))
    except AssertionError as exc:
        raise expect.CheckFailed(_("{label}: the reference weights ({layout}) could not be loaded into your module: {exc}",
                                   label=label, layout=layout, exc=exc)) from None


def _pair(submission, d_model, num_heads, seed, bias=True, dtype=torch.float32, dropout=0.0, train=False):
    """The reference module with random weights and the learner's module holding the same weights."""
    ref = MultiHeadAttention(d_model, num_heads, bias=bias).to(dtype).eval()
    _randomise(ref, d_model, seed)
    label = f"MultiHeadAttention({d_model}, {num_heads}{f', dropout={dropout}' if dropout else ''}{'' if bias else ', bias=False'})"
    mine = submission.new("MultiHeadAttention", d_model, num_heads, dropout, bias)
    mine.method("train" if train else "eval")
    if dtype == torch.float64:
        mine.method("double")
    _load(mine, ref, label, _("w_q, w_k, w_v, w_o, each a weight of shape ({d_model}, {d_model}){bias}",
                              d_model=d_model, bias=_(" and a bias") if bias else _(" without bias")))
    return ref, mine, label


# --------------------------------------------------------------------------- wrong conventions
def _contiguous(x, h):  # (B, L, d) -> (B, h, L, d/h): head i owns features i*d_head .. (i+1)*d_head - 1
    B, L, d = x.shape
    return x.reshape(B, L, h, d // h).transpose(1, 2)


def _contiguous_merge(x):  # (B, h, L, d_head) -> (B, L, h*d_head)
    B, h, L, dh = x.shape
    return x.transpose(1, 2).reshape(B, L, h * dh)


def _interleaved(x, h):  # head j owns features j, j + h, j + 2h, ...
    B, L, d = x.shape
    return x.reshape(B, L, d // h, h).permute(0, 3, 1, 2)


def _interleaved_merge(x):
    B, h, L, dh = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, L, dh * h)


def _no_transpose(x, h):  # view(B, h, L, d_head) straight from (B, L, d): positions and features mixed
    B, L, d = x.shape
    return x.reshape(B, h, L, d // h)


def _no_transpose_merge(x):
    B, h, L, dh = x.shape
    return x.reshape(B, L, h * dh)


LAYOUTS = {"contiguous": (_contiguous, _contiguous_merge), "interleaved": (_interleaved, _interleaved_merge),
           "no_transpose": (_no_transpose, _no_transpose_merge)}


def _heads(q, k, v, mask, h, layout="contiguous", scale=None, merge_layout=None):
    """Attention on projected q (B, Lq, d), k, v (B, Lk, d) cut into h heads by ``layout`` and merged
    back (B, Lq, d) by ``merge_layout`` (default: the inverse of ``layout``)."""
    split, merge = LAYOUTS[layout]
    merge = LAYOUTS[merge_layout][1] if merge_layout else merge
    qh, kh, vh = split(q, h), split(k, h), split(v, h)
    scores = qh @ kh.transpose(-2, -1) / math.sqrt(scale or qh.size(-1))
    return merge(masked_softmax(scores, mask) @ vh)


MISTAKES = {
    "interleaved": _("heads are contiguous slices of d_model (head i owns features i*d_head to (i+1)*d_head - 1 "
                     "of each projection); your output matches heads made of every num_heads-th feature"),
    "no_transpose": _("your output matches heads cut with a view to (B, num_heads, L, d_head) straight from "
                      "(B, L, d_model), which mixes positions: each position's features are cut into heads, "
                      "and only then does the head axis move in front of the positions"),
    "merge": _("merge_heads must undo split_heads: your output matches heads merged with a view to "
               "(B, L, d_model) straight from (B, num_heads, L, d_head), which mixes positions"),
    "scale_d_model": _("each head divides its scores by sqrt(d_head), the size of its own queries and keys; "
                       "your output matches scores divided by sqrt(d_model)"),
    "no_projection": _("each head attends with projected queries, keys and values; your output matches attention "
                       "on the raw query, key and value cut into heads (w_q, w_k and w_v unused)"),
    "double_projection": _("query, key and value are projected once, inside the module; your output matches "
                           "inputs that were already projected being projected again (MultiHead(XW_q, XW_k, XW_v))"),
    "no_output_projection": _("the merged heads go through the output projection w_o; your output matches the "
                              "merged heads without it"),
    "key_from_value": _("the keys are projected with w_k; your output matches keys projected with w_v"),
    "inverted_mask": _("mask True means 'may attend'; your output matches attention to exactly the masked keys"),
}

# the same two mistakes, said of split_heads' result (MISTAKES says them of the module's output)
SPLIT_MISTAKES = {
    "interleaved": _("heads are contiguous slices of d_model (head i owns features i*d_head to (i+1)*d_head - 1 "
                     "of each projection); yours matches heads made of every num_heads-th feature"),
    "no_transpose": _("yours matches heads cut with a view to (B, num_heads, L, d_head) straight from "
                      "(B, L, d_model), which mixes positions: each position's features are cut into heads, "
                      "and only then does the head axis move in front of the positions"),
}


@torch.no_grad()
def _mha_mistakes(ref, query, key, value, mask) -> list[tuple[str, torch.Tensor]]:
    """(mistake, the output it computes with ref's weights) for the common wrong conventions."""
    h, d = ref.num_heads, ref.d_model
    wq, wk, wv, wo = ref.w_q, ref.w_k, ref.w_v, ref.w_o
    q, k, v = wq(query), wk(key), wv(value)
    twice = _heads(wq(q), wk(k), wv(v), mask, h)
    found = [
        ("interleaved", wo(_heads(q, k, v, mask, h, "interleaved"))),
        ("no_transpose", wo(_heads(q, k, v, mask, h, "no_transpose"))),
        ("no_transpose", wo(_heads(q, k, v, mask, h, "no_transpose", merge_layout="contiguous"))),
        ("merge", wo(_heads(q, k, v, mask, h, merge_layout="no_transpose"))),
        ("scale_d_model", wo(_heads(q, k, v, mask, h, scale=d))),
        ("no_projection", wo(_heads(query, key, value, mask, h))),
        ("double_projection", wo(twice)),
        ("double_projection", wo(wo(twice))),  # the output projected twice as well
        ("no_output_projection", _heads(q, k, v, mask, h)),
        ("key_from_value", wo(_heads(q, wv(key), v, mask, h))),
    ]
    if mask is not None:
        found.append(("inverted_mask", wo(_heads(q, k, v, ~mask, h))))
    return found


def _matches(got, expected) -> bool:
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape or got.dtype != expected.dtype:
        return False
    try:
        expect.tensor(got, expected, "")
    except expect.CheckFailed:
        return False
    return True


def _named_mistake(got, mistakes: list[tuple[str, torch.Tensor]], messages: dict) -> str | None:
    for name, output in mistakes:
        if _matches(got, output):
            return messages[name]
    return None


def _compare(ref, mine, label, query, key, value, mask=None, what=""):
    args = (query, key, value) if mask is None else (query, key, value, mask)
    call = _("{label} applied to {what}", label=label, what=what)
    out, weights = expect.sequence(mine(*args), 2, call)
    with torch.no_grad():
        want_out, want_weights = ref(*args)
    try:
        expect.tensor(out, want_out, _("the output returned by {call}", call=call))
        expect.tensor(weights, want_weights, _("the per-head weights returned by {call}", call=call))
    except expect.CheckFailed:
        mistake = _named_mistake(out, _mha_mistakes(ref, query, key, value, mask), MISTAKES)
        if mistake:
            raise expect.CheckFailed(_("the output returned by {call} is not the reference's: {mistake}",
                                       call=call, mistake=mistake)) from None
        raise


# --------------------------------------------------------------------------- the module
def test_mha_init(submission):
    for d_model, num_heads in ((10, 3), (16, 5)):
        call = f"MultiHeadAttention({d_model}, {num_heads})"
        try:
            submission.new("MultiHeadAttention", d_model, num_heads)
        except StudentError as exc:  # the learner's code raised (or failed otherwise)
            if exc.raised("ValueError"):
                continue
            raise expect.CheckFailed(_("{call} should raise a ValueError ({d_model} is not divisible by {num_heads}); {exc}",
                                       call=call, d_model=d_model, num_heads=num_heads, exc=exc)) from None
        raise expect.CheckFailed(_("{call} should raise a ValueError: {d_model} dimensions cannot be split into {num_heads} heads "
                                   "of equal size, but it raised nothing",
                                   call=call, d_model=d_model, num_heads=num_heads))
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
        call = _("{label}.split_heads(x) with x of shape {x_shape} (B, L, d_model)",
                 label=label, x_shape=tuple(x.shape))
        heads = mine.method("split_heads", x)
        if not _matches(heads, ref.split_heads(x)):
            for layout in ("interleaved", "no_transpose"):
                if _matches(heads, LAYOUTS[layout][0](x, num_heads)):
                    raise expect.CheckFailed(_("{call} is not the reference's: {mistake}",
                                               call=call, mistake=SPLIT_MISTAKES[layout]))
        expect.tensor(heads, ref.split_heads(x), call)
        expect.tensor(mine.method("merge_heads", heads), x,
                      _("{label}.merge_heads(heads) with heads of shape {heads_shape} (B, h, L, d_head)",
                        label=label, heads_shape=tuple(heads.shape)))


def test_mha_self_attention(submission):
    gen = _gen(402)
    for d_model, num_heads, batch, length, dtype in ((16, 4, 2, 5, torch.float32), (12, 3, 1, 7, torch.float64),
                                                     (8, 1, 3, 4, torch.float32), (24, 6, 2, 3, torch.float64)):
        ref, mine, label = _pair(submission, d_model, num_heads, seed=402 + d_model, dtype=dtype)
        x = torch.randn(batch, length, d_model, generator=gen, dtype=dtype)
        _compare(ref, mine, label, x, x, x, what=_("query = key = value of shape {x_shape}, {dtype}",
                                                   x_shape=tuple(x.shape), dtype=dtype))


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
    _compare(ref, mine, label, q, kv, kv, padding, what=_("query (3, 4, 16), key = value (3, 6, 16), with a padding mask (3, 1, 1, 6)"))
    # a causal mask (L, L) in self-attention, float64
    ref, mine, label = _pair(submission, 12, 3, seed=405, dtype=torch.float64)
    x = torch.randn(2, 5, 12, generator=gen, dtype=torch.float64)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    _compare(ref, mine, label, x, x, x, causal, what=_("query = key = value (2, 5, 12), float64, with a causal mask (5, 5)"))


def test_mha_dropout(submission):
    # Compared with the learner's own module without dropout (same weights), so that only the
    # dropout contract is graded here: off in eval mode, on in training mode, expectation kept.
    d_model, num_heads, p = 8, 2, 0.5
    x = torch.randn(1, 5, d_model, generator=_gen(407), dtype=torch.float64)
    _unused, plain, _unused = _pair(submission, d_model, num_heads, seed=407, dtype=torch.float64)
    _unused, mine, label = _pair(submission, d_model, num_heads, seed=407, dtype=torch.float64, dropout=p)
    call = _("{label} in eval mode (after .eval()) on an input (1, 5, {d_model})", label=label, d_model=d_model)
    want, _unused = expect.sequence(plain(x, x, x), 2, _("MultiHeadAttention({d_model}, {num_heads}) on an input (1, 5, {d_model})",
                                                   d_model=d_model, num_heads=num_heads))
    for attempt in ("", _(" (a second call)")):
        out, _unused = expect.sequence(mine(x, x, x), 2, _("{call}{attempt}", call=call, attempt=attempt))
        expect.tensor(out, want, _("the output of {call}{attempt}: eval mode turns dropout off, so it should equal the output of "
                                   "the same module built with dropout=0.0 (and be the same on every call)",
                                   call=call, attempt=attempt))
    mine.method("train")
    copies = 4000  # the same sequence many times: dropout draws a different mask for each copy
    xs = x.expand(copies, -1, -1).clone()
    out, _unused = expect.sequence(mine(xs, xs, xs), 2, _("{label} in training mode", label=label))
    expect.true(isinstance(out, torch.Tensor) and out.shape == xs.shape and out.dtype == xs.dtype
                and bool(out.isfinite().all()),
                _("{label} in training mode on an input {xs_shape}, float64: expected a finite float64 output of "
                  "shape {xs_shape}, got {out}",
                  label=label, xs_shape=tuple(xs.shape), out=expect.describe(out)))
    if _matches(out[0], want[0]) and _matches(out[1], want[0]):
        raise expect.CheckFailed(_("{label} in training mode (after .train()) gives the output without dropout: in training, "
                                   "dropout should zero attention weights with probability dropout",
                                   label=label))
    mean = out.mean(0)
    # the mean of 4000 copies is within about 0.01 of the expectation; 0.06 leaves a wide margin
    if not torch.allclose(mean, want[0], rtol=0, atol=0.06):
        raise expect.CheckFailed(_("{label} in training mode: averaged over {copies} copies of one input, the output should be "
                                   "close to the output without dropout; the kept weights are scaled by 1 / (1 - dropout) so that "
                                   "dropout keeps the expected value", label=label, copies=copies))


def test_mha_parameter_count(submission):
    got = submission.get("mha_base_parameters")
    # four (512, 512) projections with biases; the number of heads only changes a reshape
    expect.number(got, 4 * (512 * 512 + 512), "mha_base_parameters", atol=0, rtol=0)


# --------------------------------------------------------------------------- derive: FLOPs
def _counted_flops(d_model, num_heads, len_q, len_k) -> int:
    """FLOPs of one forward pass of the reference on one sequence, as FlopCounterMode counts them.
    On the meta device: shapes only, no memory, so sizes no machine could run are counted too."""
    with torch.device("meta"):
        module = MultiHeadAttention(d_model, num_heads)
        query, memory = torch.empty(1, len_q, d_model), torch.empty(1, len_k, d_model)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(query, memory, memory)
    return counter.get_total_flops()


def test_mha_flops(submission):
    # the last size is a formula's job: a (16, 50000, 70000) matrix of scores does not fit in any memory
    for d_model, num_heads, len_q, len_k in ((16, 4, 5, 9), (24, 3, 7, 2), (32, 8, 6, 6), (12, 1, 1, 10), (40, 5, 11, 3),
                                              (1024, 16, 50000, 70000)):
        call = f"mha_flops(d_model={d_model}, num_heads={num_heads}, len_q={len_q}, len_k={len_k})"
        got = submission.call("mha_flops", d_model, num_heads, len_q, len_k)
        want = _counted_flops(d_model, num_heads, len_q, len_k)
        if isinstance(got, (int, float)) and not isinstance(got, bool) and got != want:
            d, lq, lk = d_model, len_q, len_k
            if got * 2 == want:
                raise expect.CheckFailed(_("{call}: {got:g} is not the expected value; count a multiply-add as 2 FLOPs, as FlopCounterMode "
                                           "does", call=call, got=got))
            self_attention = {8 * L * d * d + 4 * L * L * d for L in (lq, lk)}
            if got in self_attention or got == 8 * lq * d * d + 4 * lq * lk * d:
                raise expect.CheckFailed(_("{call}: {got:g} is not the expected value; which projections run over the len_q query "
                                           "positions, and which over the len_k key and value positions?",
                                           call=call, got=got))
        expect.number(got, want, call, atol=0, rtol=0)


# --------------------------------------------------------------------------- predict
CHANGES = ("one_head", "swap_heads", "swap_heads_qk", "shuffle_within_heads", "q_times_2_k_half", "q_and_k_times_2")


@torch.no_grad()
def _unchanged_truth() -> dict[str, bool]:
    """Run each change of the notebook's table on the reference: does the output stay as it was?"""
    d, h, dh = 16, 4, 4
    ref = MultiHeadAttention(d, h).double().eval()
    _randomise(ref, d, 408)
    gen = _gen(409)
    query = torch.randn(2, 5, d, generator=gen, dtype=torch.float64)
    memory = torch.randn(2, 7, d, generator=gen, dtype=torch.float64)
    before = ref(query, memory, memory)[0]
    swap = torch.cat([torch.arange(dh, 2 * dh), torch.arange(0, dh), torch.arange(2 * dh, d)])  # heads 0 and 1
    within = torch.cat([head * dh + torch.tensor([2, 0, 3, 1]) for head in range(h)])  # inside every head

    def changed(edit, heads=h) -> torch.nn.Module:
        module = MultiHeadAttention(d, heads).double().eval()
        module.load_state_dict(ref.state_dict())
        edit(module)
        return module

    def rows(*names, order):
        def edit(m):
            for name in names:
                lin = getattr(m, name)
                lin.weight.copy_(lin.weight[order])
                lin.bias.copy_(lin.bias[order])
        return edit

    def scale(**factors):
        def edit(m):
            for name, factor in factors.items():
                getattr(m, name).weight.mul_(factor)
                getattr(m, name).bias.mul_(factor)
        return edit

    def swap_heads_everywhere(m):
        rows("w_q", "w_k", "w_v", order=swap)(m)
        m.w_o.weight.copy_(m.w_o.weight[:, swap])

    modules = {
        "one_head": changed(lambda m: None, heads=1),  # the same four weights in a one-head module
        "swap_heads": changed(swap_heads_everywhere),
        "swap_heads_qk": changed(rows("w_q", "w_k", order=swap)),
        "shuffle_within_heads": changed(rows("w_q", "w_k", order=within)),
        "q_times_2_k_half": changed(scale(w_q=2.0, w_k=0.5)),
        "q_and_k_times_2": changed(scale(w_q=2.0, w_k=2.0)),
    }
    return {key: bool(torch.allclose(module(query, memory, memory)[0], before, rtol=1e-9, atol=1e-12))
            for key, module in modules.items()}


def _answers(got, name: str, keys) -> dict[str, bool]:
    """A dict {key: True or False} with exactly ``keys``, or a message that says what is missing."""
    if not isinstance(got, dict):
        raise expect.CheckFailed(_("{name} should be a dict {{key: True or False}}, got {got}",
                                   name=name, got=expect.describe(got)))
    missing, unknown = [k for k in keys if k not in got], sorted(set(got) - set(keys))
    if missing or unknown:
        raise expect.CheckFailed(_("{name} should have exactly the keys {keys}{missing}{unknown}",
                                   name=name, keys=', '.join(keys),
                                   missing=_("; missing: {keys}", keys=', '.join(missing)) if missing else "",
                                   unknown=_("; unknown: {keys}", keys=', '.join(map(str, unknown))) if unknown else ""))
    wrong_type = [k for k in keys if not isinstance(got[k], bool)]
    if wrong_type:
        raise expect.CheckFailed(_("{name}[{wrong_type!r}] should be True or False, got {value}",
                                   name=name, wrong_type=wrong_type[0], value=expect.describe(got[wrong_type[0]])))
    return {k: got[k] for k in keys}


def test_mha_unchanged(submission):
    answers = _answers(submission.get("output_unchanged"), "output_unchanged", CHANGES)
    if answers != _unchanged_truth():
        raise expect.CheckFailed(_("output_unchanged: not every answer is right; for each change, ask what becomes of "
                                   "the scores of every head, of the attention weights, and of the mixing by w_o"))


# --------------------------------------------------------------------------- variant: packed projections
@torch.no_grad()
def _packed_mistakes(ref, x, mask) -> list[tuple[str, torch.Tensor]]:
    """(mistake, output) for the wrong readings of w_qkv's layout, with ref's weights."""
    B, L, d = x.shape
    h = ref.num_heads
    qkv = ref.w_qkv(x)  # (B, L, 3d)
    q, k, v = qkv.split(d, dim=-1)
    per_head = qkv.view(B, L, h, 3 * (d // h)).chunk(3, dim=-1)  # one [q, k, v] block per head
    q_h, k_h, v_h = (t.reshape(B, L, d) for t in per_head)
    found = [
        ("per_head_blocks", ref.w_o(_heads(q_h, k_h, v_h, mask, h))),
        ("interleaved", ref.w_o(_heads(q, k, v, mask, h, "interleaved"))),
        ("no_transpose", ref.w_o(_heads(q, k, v, mask, h, "no_transpose"))),
        ("scale_d_model", ref.w_o(_heads(q, k, v, mask, h, scale=d))),
    ]
    found += [("order", ref.w_o(_heads(*order, mask, h))) for order in ((q, v, k), (k, q, v), (k, v, q), (v, q, k), (v, k, q))]
    return found


PACKED_MISTAKES = {
    "per_head_blocks": _("w_qkv's output features are three blocks, the queries of all heads, then the keys, then the "
                         "values (as in nn.MultiheadAttention's in_proj_weight); your output matches one "
                         "[query, key, value] block per head"),
    "order": _("w_qkv's output features are, in this order, the queries, the keys and the values; your output "
               "matches the three blocks read in another order"),
    "interleaved": MISTAKES["interleaved"],
    "no_transpose": MISTAKES["no_transpose"],
    "scale_d_model": MISTAKES["scale_d_model"],
}


def test_packed_self_attention(submission):
    gen = _gen(410)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    padding = (torch.arange(6)[None, :] < torch.tensor([6, 3])[:, None])[:, None, None, :]  # (2, 1, 1, 6)
    for d_model, num_heads, bias, dtype, mask, what in ((16, 4, True, torch.float32, None, _("no mask")),
                                                        (12, 3, False, torch.float64, causal, _("a causal mask (6, 6)")),
                                                        (8, 2, True, torch.float64, padding, _("a padding mask (2, 1, 1, 6)"))):
        ref = PackedSelfAttention(d_model, num_heads, bias=bias).to(dtype)
        _randomise(ref, d_model, 410 + d_model)
        label = f"PackedSelfAttention({d_model}, {num_heads}{'' if bias else ', bias=False'})"
        mine = submission.new("PackedSelfAttention", d_model, num_heads, bias)
        if dtype == torch.float64:
            mine.method("double")
        _load(mine, ref, label, _("w_qkv with a weight ({three_d_model}, {d_model}) and w_o with a weight ({d_model}, "
                                  "{d_model}){bias}", three_d_model=3 * d_model, d_model=d_model,
                                  bias=_(", each with a bias") if bias else _(", no biases")))
        x = torch.randn(2, 6, d_model, generator=gen, dtype=dtype)
        call = _("{label} applied to x {x_shape}, {dtype}, {what}",
                 label=label, x_shape=tuple(x.shape), dtype=dtype, what=what)
        out, weights = expect.sequence(mine(x) if mask is None else mine(x, mask), 2, call)
        with torch.no_grad():
            want_out, want_weights = ref(x, mask)
        try:
            expect.tensor(out, want_out, _("the output returned by {call}", call=call))
            expect.tensor(weights, want_weights, _("the per-head weights returned by {call}", call=call))
        except expect.CheckFailed:
            mistake = _named_mistake(out, _packed_mistakes(ref, x, mask), PACKED_MISTAKES)
            if mistake:
                raise expect.CheckFailed(_("the output returned by {call} is not the reference's: {mistake}",
                                           call=call, mistake=mistake)) from None
            raise
