"""Checks for ps12_efficient_attention: the online softmax update, tiled attention and grouped-query
attention.

The online softmax's state after each block is compared with ``attnlab.efficient`` (the running
maximum exactly, the sums relative to it), on blocks that raise the maximum, on scores near 1000
(where exp without the maximum subtracted overflows even in float64) and under masks that empty a
row. Tiled attention is compared with ``F.scaled_dot_product_attention`` in float64 for block sizes
that do and do not divide the lengths, with causal and padding masks, and a query with no allowed key
must get zeros. The learner's GroupedQueryAttention lives in the worker; each check loads weights drawn
here into it (``load_state_dict``, strict) and compares it with ``MultiHeadAttention`` (as many
key/value heads as heads), with SDPA's ``enable_gqa=True`` on the same projections, and with itself run
token by token with a KVCache (that holds ``num_kv_heads`` heads). When a wrong result equals what a
common mistake computes, the message names the broken contract.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from attnlab.course.messages import _
from autograder.checks import expect
from autograder.protocol import StudentError
from attnlab.efficient import online_softmax_update
from attnlab.multihead import GroupedQueryAttention, MultiHeadAttention

ASSIGNMENT = "ps12_efficient_attention"

POINTS = {
    "test_online_softmax_blocks": 2,
    "test_online_softmax_large_scores": 1,
    "test_online_softmax_masked": 1,
    "test_tiled_attention": 2,
    "test_tiled_masks": 2,
    "test_gqa_init": 1,
    "test_gqa_equals_mha": 1,
    "test_gqa_grouping": 2,
    "test_gqa_cache": 1,
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


# --------------------------------------------------------------------------- the online softmax
def _empty_state(shape, d_v, dtype):
    return (torch.full(shape, -math.inf, dtype=dtype), torch.zeros(shape, dtype=dtype),
            torch.zeros(*shape, d_v, dtype=dtype))


def _unrescaled_sum(m, s, o, scores, values, mask=None):
    """The common slip: the running sum is not multiplied by exp(m - m') (the output is)."""
    new_m, _unused, new_o = online_softmax_update(m, s, o, scores, values, mask)
    shift = torch.where(torch.isinf(new_m), torch.zeros_like(new_m), new_m)
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    return new_m, s + torch.exp(scores - shift.unsqueeze(-1)).sum(-1), new_o


STATE = ("running_max", "running_sum", "running_out")
NO_RESCALE = (_("when a block raises the running maximum from m to m', the running sum and the running output "
                "are both multiplied by exp(m - m'); your running sum matches one that is not rescaled"))


def _fold(submission, scores, values, block, mask=None, what=""):
    """Fold the blocks of keys one by one, comparing the learner's state with the reference after each."""
    shape, d_v = scores.shape[:-1], values.size(-1)
    mine = ref = _empty_state(shape, d_v, scores.dtype)
    for start in range(0, scores.size(-1), block):
        cut = slice(start, start + block)
        tile = None if mask is None else mask[..., cut]
        args = (*mine, scores[..., cut], values[..., cut, :]) + (() if tile is None else (tile,))
        call = (_("online_softmax_update on the block of keys {start}..{end} of scores {scores_shape}, "
                  "{scores_dtype}{what}",
                  start=start, end=min(start + block, scores.size(-1)) - 1, scores_shape=tuple(scores.shape), scores_dtype=scores.dtype, what=what))
        got = expect.sequence(submission.call("online_softmax_update", *args), 3, call)
        wrong = _unrescaled_sum(*mine, scores[..., cut], values[..., cut, :], tile)
        ref = online_softmax_update(*ref, scores[..., cut], values[..., cut, :], tile)
        for name, g, r, w in zip(STATE, got, ref, wrong):
            expect.tensor_or_mistake(g, r, _("{name} returned by {call}", name=name, call=call), [(w, NO_RESCALE)] if name == "running_sum" else [])
        mine = ref  # the next block starts from the right state: one slip is reported once
    return ref


def test_online_softmax_blocks(submission):
    for dtype, seed in ((torch.float64, 1), (torch.float32, 2)):
        scores = _randn(3, 4, 23, seed=seed, dtype=dtype) * 6
        scores[..., 10:] += 8  # later blocks raise the maximum: the state must be rescaled
        values = _randn(3, 23, 6, seed=seed + 10, dtype=dtype)
        _fold(submission, scores, values, 5)


def test_online_softmax_large_scores(submission):
    scores = 1000.0 + 3 * _randn(2, 5, 12, seed=3)
    values = _randn(2, 12, 4, seed=4)
    _fold(submission, scores, values, 4, what=_(" near 1000 (exp(1000) overflows: subtract the running maximum)"))


def test_online_softmax_masked(submission):
    scores = 4 * _randn(2, 6, 12, seed=5)
    values = _randn(2, 12, 3, seed=6)
    mask = torch.rand(2, 6, 12, generator=_gen(7)) < 0.6
    mask[:, 0] = False  # a query with no allowed key at all
    mask[:, 1, :8] = False  # one with allowed keys in the last block only
    mask[:, 2, 4:] = False  # one with allowed keys in the first block only
    _fold(submission, scores, values, 4, mask, what=_(", with a mask (True = may attend) that empties some rows"))


# --------------------------------------------------------------------------- tiled attention
def _sdpa(q, k, v, mask=None):
    """PyTorch's attention, with zeros for a query with no allowed key (as the course's attention)."""
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if mask is not None:
        out = out.masked_fill(~mask.any(-1, keepdim=True), 0.0)
    return out


def _compare_tiled(submission, q, k, v, mask, block_q, block_k, what):
    args = (q, k, v) if mask is None else (q, k, v, mask)
    call = _("tiled_attention(query {q_shape}, key {k_shape}, value {v_shape}{what}, block_q={block_q}, "
             "block_k={block_k}), {dtype}", q_shape=tuple(q.shape), k_shape=tuple(k.shape), v_shape=tuple(v.shape),
             what=what, block_q=block_q, block_k=block_k, dtype=q.dtype)
    got = submission.call("tiled_attention", *args, block_q=block_q, block_k=block_k)
    expect.tensor(got, _sdpa(q, k, v, mask), _("the output of {call}", call=call))


def test_tiled_attention(submission):
    q, k, v = _randn(2, 3, 13, 8, seed=11), _randn(2, 3, 17, 8, seed=12), _randn(2, 3, 17, 5, seed=13)
    for block_q, block_k in ((4, 5), (13, 17), (1, 3), (64, 64)):
        _compare_tiled(submission, q, k, v, None, block_q, block_k, "")
    q32, k32, v32 = (t.float() for t in (q, k, v))
    _compare_tiled(submission, q32, k32, v32, None, 5, 4, "")
    _compare_tiled(submission, q[0, 0], k[0], v[0], None, 6, 7, _(" (the query broadcast over the heads of key and value)"))


def test_tiled_masks(submission):
    q, k, v = _randn(2, 2, 12, 8, seed=21), _randn(2, 2, 12, 8, seed=22), _randn(2, 2, 12, 4, seed=23)
    causal = torch.ones(12, 12, dtype=torch.bool).tril()
    padding = (torch.arange(12) < torch.tensor([12, 7])[:, None])[:, None, None, :]  # (B, 1, 1, Lk)
    for mask, what in ((causal, _("a causal mask (Lq, Lk)")), (padding, _("a padding mask (B, 1, 1, Lk)")),
                       (causal & padding, _("causal and padding masks"))):
        for block_q, block_k in ((3, 5), (4, 4), (5, 3)):
            _compare_tiled(submission, q, k, v, mask, block_q, block_k, _(", {what}", what=what))
    empty = causal.clone()
    empty[3] = False  # query 3 may attend to nothing
    empty[9, :8] = False  # query 9 only to keys of the last block
    _compare_tiled(submission, q, k, v, empty, 4, 4, _(", a mask whose row 3 allows no key (its output: zeros)"))


# --------------------------------------------------------------------------- grouped-query attention
def _randomise(module, seed: int) -> None:
    gen = _gen(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.uniform_(-0.3, 0.3, generator=gen)


def _gqa_pair(submission, d_model, num_heads, num_kv_heads, seed, bias=True, rotary=False):
    ref = GroupedQueryAttention(d_model, num_heads, num_kv_heads, bias=bias, rotary=rotary).double().eval()
    _randomise(ref, seed)
    label = f"GroupedQueryAttention({d_model}, {num_heads}, {num_kv_heads}{'' if bias else ', bias=False'}" \
            f"{', rotary=True' if rotary else ''})"
    mine = submission.new("GroupedQueryAttention", d_model, num_heads, num_kv_heads, 0.0, bias, False, rotary)
    mine.method("double")
    mine.method("eval")
    try:
        mine.method("load_state_dict", dict(ref.state_dict()))
    except AssertionError as exc:
        raise expect.CheckFailed(_("{label}: the reference weights (w_q and w_o ({d_model}, {d_model}), w_k and w_v "
                                   "({kv_size}, {d_model})) could not be loaded into your module: {exc}",
                                   label=label, d_model=d_model, kv_size=num_kv_heads * d_model // num_heads, exc=exc)) from None
    return ref, mine, label


@torch.no_grad()
def _tiled_groups(ref, x, mask):
    """The output when the key/value heads are tiled (Tensor.repeat) instead of repeated in place."""
    h, h_kv, d = ref.num_heads, ref.num_kv_heads, ref.d_head
    B, L, _unused = x.shape
    q = ref.w_q(x).view(B, L, h, d).transpose(1, 2)
    k, v = (w(x).view(B, L, h_kv, d).transpose(1, 2).repeat(1, h // h_kv, 1, 1) for w in (ref.w_k, ref.w_v))
    return ref.w_o(_sdpa(q, k, v, mask).transpose(1, 2).reshape(B, L, h * d))


GROUPS = (_("query head i uses key/value head i // (num_heads // num_kv_heads): consecutive query heads share "
            "one; your output matches the key/value heads tiled (head i using key/value head i % num_kv_heads)"))


def _compare_gqa(ref, mine, label, x, mask, what):
    call = _("{label} applied to x {x_shape}{what}", label=label, x_shape=tuple(x.shape), what=what)
    got = expect.sequence(mine(x, x, x) if mask is None else mine(x, x, x, mask), 2, call)
    with torch.no_grad():
        want_out, want_weights = ref(x, x, x, mask)
    expect.tensor_or_mistake(got[0], want_out, _("the output of {call}", call=call), [(_tiled_groups(ref, x, mask), GROUPS)])
    expect.tensor(got[1], want_weights, _("the per-head weights returned by {call}", call=call))


def test_gqa_init(submission):
    for d_model, num_heads, num_kv_heads in ((24, 6, 4), (16, 4, 3)):
        try:
            submission.new("GroupedQueryAttention", d_model, num_heads, num_kv_heads)
        except StudentError as exc:
            if exc.raised("ValueError"):
                continue
            raise
        raise expect.CheckFailed(_("GroupedQueryAttention({d_model}, {num_heads}, {num_kv_heads}) should raise a ValueError: "
                                   "{num_heads} heads cannot be shared out among {num_kv_heads} key/value heads",
                                   d_model=d_model, num_heads=num_heads, num_kv_heads=num_kv_heads))
    # Loading the reference's state_dict (strict) checks the names and shapes of every parameter.
    for d_model, num_heads, num_kv_heads, bias in ((24, 6, 2, True), (32, 8, 1, False)):
        _gqa_pair(submission, d_model, num_heads, num_kv_heads, seed=61, bias=bias)


def test_gqa_equals_mha(submission):
    for d_model, num_heads, seed in ((24, 6, 31), (16, 2, 32)):
        ref = MultiHeadAttention(d_model, num_heads).double().eval()
        _randomise(ref, seed)
        label = f"GroupedQueryAttention({d_model}, {num_heads}, {num_heads})"
        mine = submission.new("GroupedQueryAttention", d_model, num_heads, num_heads)
        mine.method("double")
        mine.method("eval")
        mine.method("load_state_dict", dict(ref.state_dict()))
        x, memory = _randn(2, 5, d_model, seed=seed + 1), _randn(2, 7, d_model, seed=seed + 2)
        mask = (torch.arange(7) < torch.tensor([7, 4])[:, None])[:, None, None, :]
        for args, what in (((x, x, x, torch.ones(5, 5, dtype=torch.bool).tril()), _("self-attention with a causal mask")),
                           ((x, memory, memory, mask), _("cross-attention with a padding mask"))):
            call = _("{label} with the weights of MultiHeadAttention({d_model}, {num_heads}), {what}",
                     label=label, d_model=d_model, num_heads=num_heads, what=what)
            got = expect.sequence(mine(*args), 2, call)
            with torch.no_grad():
                want = ref(*args)
            expect.tensor(got[0], want[0], _("the output of {call}", call=call))
            expect.tensor(got[1], want[1], _("the per-head weights of {call}", call=call))


def test_gqa_grouping(submission):
    for d_model, num_heads, num_kv_heads, seed in ((24, 6, 2, 41), (32, 8, 4, 42), (16, 4, 1, 43)):
        ref, mine, label = _gqa_pair(submission, d_model, num_heads, num_kv_heads, seed, bias=seed != 42)
        x = _randn(2, 6, d_model, seed=seed + 1)
        _compare_gqa(ref, mine, label, x, None, "")
        _compare_gqa(ref, mine, label, x, torch.ones(6, 6, dtype=torch.bool).tril(), _(" with a causal mask"))


def test_gqa_cache(submission):
    for num_kv_heads, rotary, seed in ((2, False, 51), (1, True, 52)):
        ref, mine, label = _gqa_pair(submission, 24, 6, num_kv_heads, seed, rotary=rotary)
        x = _randn(1, 5, 24, seed=seed + 1)
        cache = submission.new("KVCache")
        steps = [expect.sequence(mine(x[:, t:t + 1], x[:, t:t + 1], x[:, t:t + 1], None, cache.handle), 2,
                                 _("{label} on token {t} with a KVCache", label=label, t=t))[0] for t in range(5)]
        # KVCache.update with no new position returns what the cache holds; it cannot concatenate
        # keys of num_kv_heads heads to a cache that holds another number of heads.
        nothing = torch.zeros(1, num_kv_heads, 0, 4, dtype=torch.float64)
        wrong_heads = (_("{label} run on 5 tokens one at a time with a KVCache: the cache should hold the keys and "
                         "values of num_kv_heads = {num_kv_heads} heads, (1, {num_kv_heads}, 5, 4) each, and repeat them "
                         "for the groups of query heads only after the cache",
                         label=label, num_kv_heads=num_kv_heads))
        try:
            keys, values = expect.sequence(cache.method("update", nothing, nothing), 2, "KVCache.update")
        except StudentError:
            raise expect.CheckFailed(wrong_heads) from None
        expect.true(tuple(keys.shape) == (1, num_kv_heads, 5, 4), _("{wrong_heads}; got {keys_shape}",
                                                                    wrong_heads=wrong_heads, keys_shape=tuple(keys.shape)))
        with torch.no_grad():
            want = ref(x, x, x, torch.ones(5, 5, dtype=torch.bool).tril())[0]
        for t, step in enumerate(steps):
            expect.tensor(step, want[:, t:t + 1], _("the output of {label} on token {t}, run one token at a time with a KVCache (the full pass with "
                                                    "a causal mask gives the reference)", label=label, t=t))
