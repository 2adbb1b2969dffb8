"""Checks for ps05_positional: the sinusoidal encoding, rotary embeddings, two derived quantities,
a prediction, and the half-split rotary variant.

Each test takes ``submission`` (calls run in a sandboxed worker) and compares what comes back with
``attnlab.positional`` on inputs chosen here. ``test_rotary_relative`` checks the property that makes
RoPE useful (scores depend only on the offset) without the reference, so that it gives a point to a
rotation that is right in spirit but pairs the features differently. When a wrong answer equals what
a common wrong convention computes (pairs (i, i + d/2) instead of (2i, 2i+1), all sines then all
cosines, the angle turned backwards, a table indexed by the sequence length, ...), computed here too,
the message names the broken contract. The derive and predict answers are compared with the
reference table and with experiments run here; their messages never contain the expected value.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import math

import torch

from attnlab.course.messages import _
from autograder.checks import expect
from autograder.protocol import StudentError
from attnlab import positional as ref

ASSIGNMENT = "ps05_positional"

POINTS = {
    "test_pe_shape": 1,
    "test_pe_values": 3,
    "test_pe_odd_d_model": 1,
    "test_rotary_values": 3,
    "test_rotary_relative": 1,
    "test_slowest_wavelength": 1,
    "test_pe_squared_distance": 2,
    "test_positions_unchanged": 2,
    "test_rotary_half": 3,
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _matches(got, expected: torch.Tensor, atol=None, rtol=None) -> bool:
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape or got.dtype != expected.dtype:
        return False
    try:
        expect.tensor(got, expected, "", atol=atol, rtol=rtol)
    except expect.CheckFailed:
        return False
    return True


# --------------------------------------------------------------------------- the sinusoidal table
def test_pe_shape(submission):
    for max_len, d_model in ((10, 6), (1, 2), (7, 16)):
        call = f"sinusoidal_positional_encoding({max_len}, {d_model})"
        got = submission.call("sinusoidal_positional_encoding", max_len, d_model)
        if not isinstance(got, torch.Tensor):
            raise expect.CheckFailed(_("{call}: expected a tensor, got {got}",
                                       call=call, got=expect.describe(got)))
        if tuple(got.shape) == (max_len, max_len + 1) != (max_len, d_model):
            raise expect.CheckFailed(_("{call}: expected shape ({max_len}, {d_model}) = (max_len, d_model), got {got_shape} = "
                                       "(max_len, max_len + 1): the second axis holds the d_model features, whose frequencies are "
                                       "indexed by the feature pair i, not by the positions",
                                       call=call, max_len=max_len, d_model=d_model, got_shape=tuple(got.shape)))
        expect.true(tuple(got.shape) == (max_len, d_model),
                    _("{call}: expected shape ({max_len}, {d_model}) = (max_len, d_model), got {got_shape}",
                      call=call, max_len=max_len, d_model=d_model, got_shape=tuple(got.shape)))
        expect.true(got.dtype == torch.float32, _("{call}: expected dtype torch.float32, got {got_dtype}",
                                                  call=call, got_dtype=got.dtype))


def _turned(pe: torch.Tensor, k: int) -> torch.Tensor:
    """PE(pos) M_k: each pair (sin a, cos a) of the rows of pe turned into (sin(a + k w_i), cos(a + k w_i))."""
    omega = 10000.0 ** (-torch.arange(0, pe.size(-1), 2, dtype=torch.float64) / pe.size(-1))
    sin, cos = pe[:, 0::2], pe[:, 1::2]
    out = torch.empty_like(pe)
    out[:, 0::2] = sin * torch.cos(k * omega) + cos * torch.sin(k * omega)
    out[:, 1::2] = cos * torch.cos(k * omega) - sin * torch.sin(k * omega)
    return out


def _table_mistakes(max_len: int, d_model: int) -> list[tuple[str, torch.Tensor]]:
    """(contract, the table of a common wrong layout) for a float32 (max_len, d_model) table."""
    want = ref.sinusoidal_positional_encoding(max_len, d_model)
    sin, cos = want[:, 0::2], want[:, 1::2]
    return [
        (_("the sine of pair i goes to the even feature 2i and its cosine to the odd feature 2i+1 (interleaved); "
           "your table matches all the sines first, then all the cosines"), torch.cat([sin, cos], dim=-1)),
        (_("the sine goes to the even features 2i and the cosine to the odd features 2i+1; your table has them the "
           "other way round"), torch.stack([cos, sin], dim=-1).flatten(-2)),
    ]


def test_pe_values(submission):
    for max_len, d_model in ((50, 16), (64, 8), (20, 6), (3, 2)):
        call = f"sinusoidal_positional_encoding({max_len}, {d_model})"
        got = submission.call("sinusoidal_positional_encoding", max_len, d_model)
        want = ref.sinusoidal_positional_encoding(max_len, d_model)
        if isinstance(got, torch.Tensor) and got.shape == want.shape and got.dtype == want.dtype:
            # the most common slips, named before the numbers
            for contract, table in _table_mistakes(max_len, d_model):
                if not _matches(want, table, atol=2e-5, rtol=1e-4) and _matches(got, table, atol=2e-5, rtol=1e-4):
                    raise expect.CheckFailed(_("{call}: {contract}", call=call, contract=contract))
            if d_model > 2 and max_len > 1 and bool(torch.allclose(got, got[:, :1].expand_as(got))):
                raise expect.CheckFailed(_("{call}: every feature of a row holds the same number; the angle of pair i depends on i (its "
                                           "frequency is 1 / 10000^(2i / d_model)), and the sine and the cosine go to two features, 2i and "
                                           "2i+1, never summed", call=call))
            pair_norms = got[:, 0::2].double() ** 2 + got[:, 1::2].double() ** 2
            expect.true(bool(torch.allclose(pair_norms, torch.ones_like(pair_norms), atol=1e-4)),
                        _("{call}: each pair (PE[pos, 2i], PE[pos, 2i+1]) should be the sine and the cosine of the same "
                          "angle, so that its squares sum to 1", call=call))
            expect.tensor(got[0], want[0], _("row 0 of {call} (position 0: sin 0 = 0 on the even features 2i, cos 0 = 1 on the odd features "
                                             "2i+1)", call=call), atol=2e-5, rtol=1e-4)
            for k in (1, 7):  # chapter 5: PE(pos + k) = PE(pos) M_k, each pair turned by the angle k * omega_i
                expect.tensor(got[k:].double(), _turned(got[:-k].double(), k),
                              _("rows {k}.. of {call} against rows 0.. turned by k = {k} (PE(pos + {k}) should be PE(pos) with "
                                "each pair (2i, 2i+1) turned by the angle {k} / 10000^(2i / d_model))",
                                k=k, call=call),
                              atol=1e-4, rtol=1e-4)
        expect.tensor(got, want, call, atol=2e-5, rtol=1e-4)


def test_pe_odd_d_model(submission):
    for max_len, d_model in ((4, 5), (10, 1)):
        call = f"sinusoidal_positional_encoding({max_len}, {d_model})"
        try:
            submission.call("sinusoidal_positional_encoding", max_len, d_model)
        except StudentError as exc:  # the learner's code raised (or failed otherwise)
            if exc.raised("ValueError"):
                continue
            raise expect.CheckFailed(_("{call} should raise a ValueError (d_model = {d_model} is odd); {exc}",
                                       call=call, d_model=d_model, exc=exc)) from None
        raise expect.CheckFailed(_("{call} should raise a ValueError (d_model = {d_model} is odd), but it returned a value",
                                   call=call, d_model=d_model))


# --------------------------------------------------------------------------- rotary embeddings
def _rotate(x, positions, layout="interleaved", sign=1.0, base=10000.0, freq_layout=None):
    """x rotated with pairs laid out as ``layout`` ("interleaved": (2i, 2i+1); "halves": (i, i + d/2)),
    by the angle sign * pos * omega_i; ``freq_layout="repeated"`` gives feature j the angle of pair j // 2
    (a half-split rotation reading the interleaved table of angles)."""
    d = x.size(-1)
    angles = ref.rotary_angles(positions, d, base)  # (L, d/2)
    if freq_layout == "repeated":  # angles repeated pair by pair, (L, d): features j and j+1 share pair j // 2
        full = angles.repeat_interleave(2, dim=-1)
        cos, sin = full.cos().to(x.dtype), (sign * full).sin().to(x.dtype)
        turned = torch.cat((-x[..., d // 2:], x[..., : d // 2]), dim=-1)  # the half-split partner, signed
        return x * cos + turned * sin
    cos, sin = angles.cos().to(x.dtype), (sign * angles).sin().to(x.dtype)
    if layout == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)
    a, b = x[..., : d // 2], x[..., d // 2:]
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)


def _rotary_mistakes(x, positions, interleaved: bool) -> list[tuple[str, torch.Tensor]]:
    """(contract, what a common wrong convention returns) for apply_rotary (interleaved) or apply_rotary_half."""
    own, other = ("interleaved", "halves") if interleaved else ("halves", "interleaved")
    pairs = {"interleaved": "(2i, 2i+1)", "halves": "(i, i + d/2)"}
    found = [
        (_("pairs are {own}, not {other}: your output matches the other pairing of the features",
           own=pairs[own], other=pairs[other]),
         _rotate(x, positions, other)),
        (_("the rotation turns each pair by +m * omega_i, counterclockwise: (x cos - y sin, x sin + y cos); your output "
           "matches the angle -m * omega_i"), _rotate(x, positions, own, sign=-1.0)),
        (_("each row l is turned by the angle of its own position positions[l]; your output matches the positions "
           "0, 1, ..., L - 1 instead of those given"),
         _rotate(x, torch.arange(x.size(-2)), own)),
    ]
    if not interleaved:
        found.append((_("features i and i + d/2 form pair i and share its angle pos * omega_i; your output matches "
                        "angles repeated pair by pair (the table of the interleaved layout)"),
                      _rotate(x, positions, "halves", freq_layout="repeated")))
    return found


def _check_rotary(submission, x, positions, what, name="apply_rotary"):
    call = _("{name}(x {x_shape} {dtype}, positions={positions}){what}", name=name, x_shape=tuple(x.shape),
             dtype=x.dtype, positions=positions.tolist(), what=what)
    got = submission.call(name, x, positions)
    want = ref.apply_rotary(x, positions) if name == "apply_rotary" else ref.apply_rotary_half(x, positions)
    if not _matches(got, want):
        for contract, output in _rotary_mistakes(x, positions, interleaved=name == "apply_rotary"):
            if not _matches(want, output) and _matches(got, output):
                raise expect.CheckFailed(_("{call} is not the reference's: {contract}",
                                           call=call, contract=contract))
    expect.tensor(got, want, call)


def test_rotary_values(submission):
    gen = _gen(501)
    _check_rotary(submission, torch.randn(5, 8, generator=gen), torch.arange(5), "")
    _check_rotary(submission, torch.randn(2, 3, 4, 6, generator=gen, dtype=torch.float64),
                  torch.tensor([0, 3, 1, 20]), _(" (batch and head axes, positions in any order)"))
    _check_rotary(submission, torch.randn(2, 3, 16, generator=gen, dtype=torch.float64),
                  torch.tensor([100, 101, 2000]), _(" (large positions)"))


def test_rotary_relative(submission):
    # Rotations: norms unchanged; position 0 changes nothing; q at m and k at n score as q at m+s and k at n+s.
    gen = _gen(502)
    d = 8
    q = torch.randn(1, d, generator=gen, dtype=torch.float64)
    k = torch.randn(1, d, generator=gen, dtype=torch.float64)
    m = torch.tensor([3, 10, 50, 7, 0, 12])
    n = torch.tensor([1, 8, 48, 5, 0, 12])
    shifts = torch.tensor([0, 7, 1, 93, 5, 0])
    rq = submission.call("apply_rotary", q.expand(6, d).clone(), m + shifts)
    rk = submission.call("apply_rotary", k.expand(6, d).clone(), n + shifts)
    for name, value in ((_("apply_rotary(q, positions) for 6 positions"), rq), (_("apply_rotary(k, positions) for 6 positions"), rk)):
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != (6, d) or value.dtype != torch.float64:
            raise expect.CheckFailed(_("{name} with a float64 (6, {d}) input: expected a float64 tensor of shape (6, {d}), got {value}",
                                       name=name, d=d, value=expect.describe(value)))
    norms = rq.norm(dim=-1)
    expect.tensor(norms, q.norm(dim=-1).expand(6),
                  _("the norms of a rotated query at 6 positions (a rotation keeps the length of a vector)"))
    at_zero = submission.call("apply_rotary", q, torch.tensor([0]))
    expect.tensor(at_zero, q, _("apply_rotary(q, positions=[0]) (position 0 is a rotation by angle 0)"))
    scores = (rq * rk).sum(-1)  # query at m+s with key at n+s
    first_pair = (rq[:4] * rk[:4]).sum(-1)
    expect.tensor(first_pair, first_pair[:1].expand(4),
                  _("the scores of q at positions 3, 17, 51, 100 with k at positions 1, 15, 49, 98 (all two apart): "
                    "with rotary embeddings they should all be equal"))
    expect.tensor(scores[4:], (q * k).sum(-1).expand(2),
                  _("the scores of q and k at the same position (0 and 12): they should equal the unrotated q . k"))
    moved = submission.call("apply_rotary", q, torch.tensor([5]))
    expect.true(isinstance(moved, torch.Tensor) and not torch.allclose(moved, q),
                _("apply_rotary(q, positions=[5]) returned q unchanged: position 5 should rotate it"))


# --------------------------------------------------------------------------- derive
def test_slowest_wavelength(submission):
    got = submission.get("slowest_wavelength")
    # the last pair of d_model = 8 turns by 10000^(-6/8) = 1/1000 radian per position
    expect.number(got, 2 * math.pi * 10000 ** (6 / 8), "slowest_wavelength", atol=0, rtol=1e-3)


def _measured_squared_distance(offset: int, d_model: int) -> float:
    """||PE(p + offset) - PE(p)||^2 measured on the reference table at several p (they agree: it depends on
    the offset only)."""
    starts = (0, 3, 40)
    table = ref.sinusoidal_positional_encoding(max(starts) + abs(offset) + 1, d_model).double()
    values = [float(((table[p + abs(offset)] - table[p]) ** 2).sum()) for p in starts]
    assert max(values) - min(values) < 1e-4, values  # the reference is right: a check's error, not the learner's
    return sum(values) / len(values)


def test_pe_squared_distance(submission):
    for offset, d_model in ((1, 8), (5, 16), (37, 64), (1000, 32), (2, 2), (-3, 8), (0, 12)):
        call = f"pe_squared_distance(offset={offset}, d_model={d_model})"
        got = submission.call("pe_squared_distance", offset, d_model)
        want = _measured_squared_distance(offset, d_model)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, (int, float)) and not isinstance(got, bool) and not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-4):
            if want > 1e-3 and math.isclose(got * got, want, rel_tol=1e-4):
                raise expect.CheckFailed(_("{call}: {got:g} is not the expected value; the task asks for the squared distance, not the "
                                           "distance", call=call, got=got))
            if want > 1e-3 and math.isclose(2 * got, want, rel_tol=1e-4):
                raise expect.CheckFailed(_("{call}: {got:g} is not the expected value; each pair contributes two features, a sine and a "
                                           "cosine: does your sum count both?", call=call, got=got))
        expect.number(got, want, call, atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------- predict
CHANGES = ("rope_swap_positions", "rope_shift_base_100", "rope_queries_only", "rope_norm",
           "sinusoidal_wider_table", "learned_shift")


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.allclose(a, b, rtol=1e-9, atol=1e-9))


def _unchanged_truth() -> dict[str, bool]:
    """Run each change of the notebook's table with the reference: does the compared quantity stay the same?"""
    gen = _gen(503)
    d = 16
    q = torch.randn(1, d, generator=gen, dtype=torch.float64)
    k = torch.randn(1, d, generator=gen, dtype=torch.float64)

    def score(m, n, base=10000.0, rotate_keys=True):
        rq = ref.apply_rotary(q, torch.tensor([m]), base)
        rk = ref.apply_rotary(k, torch.tensor([n]), base) if rotate_keys else k
        return (rq * rk).sum()

    # LearnedPositionalEmbedding's initialisation, N(0, 0.02^2) per entry, drawn here with a seeded generator
    vectors = torch.empty(64, d, dtype=torch.float64).normal_(0.0, 0.02, generator=gen)
    narrow = ref.sinusoidal_positional_encoding(51, 32)[1:].double()  # positions 1..50
    wide = ref.sinusoidal_positional_encoding(51, 64)[1:, :32].double()
    return {
        "rope_swap_positions": _same(score(7, 2), score(2, 7)),
        "rope_shift_base_100": _same(score(7, 2, base=100.0), score(7 + 25, 2 + 25, base=100.0)),
        "rope_queries_only": _same(score(7, 2, rotate_keys=False), score(7 + 25, 2 + 25, rotate_keys=False)),
        "rope_norm": _same(ref.apply_rotary(q, torch.tensor([3])).norm(), ref.apply_rotary(q, torch.tensor([3000])).norm()),
        "sinusoidal_wider_table": _same(narrow, wide),
        "learned_shift": _same(vectors[7] @ vectors[2], vectors[7 + 25] @ vectors[2 + 25]),
    }


def test_positions_unchanged(submission):
    got = submission.get("unchanged")
    if not isinstance(got, dict):
        raise expect.CheckFailed(_("unchanged should be a dict {{key: True or False}}, got {got}",
                                   got=expect.describe(got)))
    missing, unknown = [k for k in CHANGES if k not in got], sorted(map(str, set(got) - set(CHANGES)))
    if missing or unknown:
        raise expect.CheckFailed(_("unchanged should have exactly the keys {keys}{missing}{unknown}",
                                   keys=', '.join(CHANGES),
                                   missing=_("; missing: {keys}", keys=', '.join(missing)) if missing else "",
                                   unknown=_("; unknown: {keys}", keys=', '.join(unknown)) if unknown else ""))
    for key in CHANGES:
        if not isinstance(got[key], bool):
            raise expect.CheckFailed(_("unchanged[{key!r}] should be True or False, got {got_key}",
                                       key=key, got_key=expect.describe(got[key])))
    if {key: got[key] for key in CHANGES} != _unchanged_truth():
        raise expect.CheckFailed(_("unchanged: not every answer is right; for each change, write the quantity as a "
                                   "formula in the positions (and the frequencies) and look at what the change does to it"))


# --------------------------------------------------------------------------- variant: pairs (i, i + d/2)
def test_rotary_half(submission):
    gen = _gen(504)
    _check_rotary(submission, torch.randn(5, 8, generator=gen), torch.arange(5), "", name="apply_rotary_half")
    _check_rotary(submission, torch.randn(2, 3, 4, 6, generator=gen, dtype=torch.float64),
                  torch.tensor([0, 3, 1, 20]), _(" (batch and head axes, positions in any order)"), name="apply_rotary_half")
    _check_rotary(submission, torch.randn(2, 3, 16, generator=gen, dtype=torch.float64),
                  torch.tensor([100, 101, 2000]), _(" (large positions)"), name="apply_rotary_half")
