"""Checks for ps05_positional: the sinusoidal encoding, rotary embeddings, the slowest wavelength.

Each test takes ``submission`` (calls run in a sandboxed worker) and compares what comes back with
``attnlab.positional`` on inputs chosen here; ``test_rotary_relative`` checks the
property that makes RoPE useful (scores depend only on the offset) without the reference, so that
it gives a point to a rotation that is right in spirit but pairs the features differently.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import math

import torch

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
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_pe_shape(submission):
    for max_len, d_model in ((10, 6), (1, 2), (7, 16)):
        call = f"sinusoidal_positional_encoding({max_len}, {d_model})"
        got = submission.call("sinusoidal_positional_encoding", max_len, d_model)
        if not isinstance(got, torch.Tensor):
            raise expect.CheckFailed(f"{call}: expected a tensor, got {expect.describe(got)}")
        expect.true(tuple(got.shape) == (max_len, d_model),
                    f"{call}: expected shape ({max_len}, {d_model}) = (max_len, d_model), got {tuple(got.shape)}")
        expect.true(got.dtype == torch.float32, f"{call}: expected dtype torch.float32, got {got.dtype}")


def _turned(pe: torch.Tensor, k: int) -> torch.Tensor:
    """PE(pos) M_k: each pair (sin a, cos a) of the rows of pe turned into (sin(a + k w_i), cos(a + k w_i))."""
    omega = 10000.0 ** (-torch.arange(0, pe.size(-1), 2, dtype=torch.float64) / pe.size(-1))
    sin, cos = pe[:, 0::2], pe[:, 1::2]
    out = torch.empty_like(pe)
    out[:, 0::2] = sin * torch.cos(k * omega) + cos * torch.sin(k * omega)
    out[:, 1::2] = cos * torch.cos(k * omega) - sin * torch.sin(k * omega)
    return out


def test_pe_values(submission):
    for max_len, d_model in ((50, 16), (64, 8), (20, 6), (3, 2)):
        call = f"sinusoidal_positional_encoding({max_len}, {d_model})"
        got = submission.call("sinusoidal_positional_encoding", max_len, d_model)
        want = ref.sinusoidal_positional_encoding(max_len, d_model)
        if isinstance(got, torch.Tensor) and got.shape == want.shape and got.dtype == want.dtype:
            # the most common slips, named before the numbers
            pair_norms = got[:, 0::2].double() ** 2 + got[:, 1::2].double() ** 2
            expect.true(bool(torch.allclose(pair_norms, torch.ones_like(pair_norms), atol=1e-4)),
                        f"{call}: each pair (PE[pos, 2i], PE[pos, 2i+1]) should be the sine and the cosine of "
                        f"the same angle, so that its squares sum to 1")
            expect.tensor(got[0], want[0], f"row 0 of {call} (position 0: sin 0 = 0 on the even features 2i, "
                                           "cos 0 = 1 on the odd features 2i+1)", atol=2e-5, rtol=1e-4)
            for k in (1, 7):  # chapter 5: PE(pos + k) = PE(pos) M_k, each pair turned by the angle k * omega_i
                expect.tensor(got[k:].double(), _turned(got[:-k].double(), k),
                              f"rows {k}.. of {call} against rows 0.. turned by k = {k} (PE(pos + {k}) "
                              f"should be PE(pos) with each pair (2i, 2i+1) turned by the angle {k} / 10000^(2i / d_model))",
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
            raise expect.CheckFailed(f"{call} should raise a ValueError (d_model = {d_model} is odd); {exc}") from None
        raise expect.CheckFailed(f"{call} should raise a ValueError (d_model = {d_model} is odd), but it returned a value")


def _check_rotary(submission, x, positions, what):
    call = f"apply_rotary(x {tuple(x.shape)} {x.dtype}, positions={positions.tolist()}){what}"
    got = submission.call("apply_rotary", x, positions)
    expect.tensor(got, ref.apply_rotary(x, positions), call)


def test_rotary_values(submission):
    gen = _gen(501)
    _check_rotary(submission, torch.randn(5, 8, generator=gen), torch.arange(5), "")
    _check_rotary(submission, torch.randn(2, 3, 4, 6, generator=gen, dtype=torch.float64),
                  torch.tensor([0, 3, 1, 20]), " (batch and head axes, positions in any order)")
    _check_rotary(submission, torch.randn(2, 3, 16, generator=gen, dtype=torch.float64),
                  torch.tensor([100, 101, 2000]), " (large positions)")


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
    for name, value in (("apply_rotary(q, positions) for 6 positions", rq), ("apply_rotary(k, positions) for 6 positions", rk)):
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != (6, d) or value.dtype != torch.float64:
            raise expect.CheckFailed(f"{name} with a float64 (6, {d}) input: expected a float64 tensor of shape (6, {d}), "
                                     f"got {expect.describe(value)}")
    norms = rq.norm(dim=-1)
    expect.tensor(norms, q.norm(dim=-1).expand(6),
                  "the norms of a rotated query at 6 positions (a rotation keeps the length of a vector)")
    at_zero = submission.call("apply_rotary", q, torch.tensor([0]))
    expect.tensor(at_zero, q, "apply_rotary(q, positions=[0]) (position 0 is a rotation by angle 0)")
    scores = (rq * rk).sum(-1)  # query at m+s with key at n+s
    first_pair = (rq[:4] * rk[:4]).sum(-1)
    expect.tensor(first_pair, first_pair[:1].expand(4),
                  "the scores of q at positions 3, 17, 51, 100 with k at positions 1, 15, 49, 98 (all two apart): "
                  "with rotary embeddings they should all be equal")
    expect.tensor(scores[4:], (q * k).sum(-1).expand(2),
                  "the scores of q and k at the same position (0 and 12): they should equal the unrotated q . k")
    moved = submission.call("apply_rotary", q, torch.tensor([5]))
    expect.true(isinstance(moved, torch.Tensor) and not torch.allclose(moved, q),
                "apply_rotary(q, positions=[5]) returned q unchanged: position 5 should rotate it")


def test_slowest_wavelength(submission):
    got = submission.get("slowest_wavelength")
    # the last pair of d_model = 8 turns by 10000^(-6/8) = 1/1000 radian per position
    expect.number(got, 2 * math.pi * 10000 ** (6 / 8), "slowest_wavelength", atol=0, rtol=1e-3)
