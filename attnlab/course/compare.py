"""One comparison of a result with the expected tensor, shared by the learners' self-checks
(``selfcheck.expect_tensor``) and the grader's checks (``autograder.checks.expect.tensor``).

It looks at type, then shape, then dtype, then finiteness, then values, and returns the first
difference in plain words, or None. The values step names the worst entry: "largest difference
is at index (1, 0): expected 0.5, got 0.25 (tolerance atol=1e-05, rtol=0.0001)". Each caller
raises its own exception with that message and picks its own tolerances. Torch only: the
grader imports this module, so it must not import the grader back.
"""
from __future__ import annotations

import math

import torch


def describe(value) -> str:
    """What a value is, in a few words (for "expected a tensor, got ...")."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} values"
    if isinstance(value, list):
        return f"a list of {len(value)} values"
    if value is None:
        return "None"
    # What the grader's wire format gives back for objects that stay in (or cannot leave) its worker.
    if type(value).__name__ in ("Unsupported", "Handle") and hasattr(value, "type_name"):
        return f"an object of type {value.type_name}"
    return f"a {type(value).__name__}"


def _index(flat_index: int, shape) -> tuple:
    idx = []
    for size in reversed(shape):
        idx.append(flat_index % size)
        flat_index //= size
    return tuple(reversed(idx))


def tensor_difference(name: str, got, expected: torch.Tensor, atol: float, rtol: float) -> str | None:
    """The first way ``got`` differs from ``expected`` ("name: expected shape (2, 4), got (4, 2)"),
    or None when it is a tensor of the same shape and dtype whose values agree within
    ``atol + rtol * |expected|`` (NaN and infinities only where ``expected`` has the same)."""
    if not isinstance(got, torch.Tensor):
        return f"{name}: expected a tensor, got {describe(got)}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"{name}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    if got.dtype != expected.dtype:
        return f"{name}: expected dtype {expected.dtype}, got {got.dtype}"
    # Compared on the CPU, without autograd: a self-check may be handed a CUDA tensor or one with grad.
    got, expected = got.detach().cpu(), expected.detach().cpu()
    if expected.is_floating_point():
        bad = ~torch.isfinite(got) & torch.isfinite(expected)
        if bad.any():
            first = _index(int(bad.flatten().nonzero()[0]), got.shape)
            where = f" (the first at index {first})" if got.dim() else ""
            return (f"{name}: {int(bad.sum())} of {got.numel()} entries are NaN or infinite{where}, "
                    "but all should be finite")
    try:
        torch.testing.assert_close(got, expected, atol=atol, rtol=rtol, equal_nan=True)
    except AssertionError:
        return _worst_difference(name, got, expected, atol, rtol)
    return None


def _worst_difference(name: str, got: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> str:
    wide = torch.complex128 if expected.is_complex() else torch.float64  # no overflow, and booleans subtract
    g, e = got.to(wide).flatten(), expected.to(wide).flatten()
    same = (g == e) | (g.isnan() & e.isnan())  # equal infinities and NaN where NaN is expected agree
    diff = (g - e).abs().nan_to_num(nan=math.inf)
    diff = torch.where(same, torch.zeros_like(diff), diff)
    bad = ~same & (~torch.isfinite(g) | ~torch.isfinite(e) | (diff > atol + rtol * e.abs()))
    n_bad = max(int(bad.sum()), 1)
    worst = int(torch.where(bad, diff, torch.full_like(diff, -1.0)).argmax()) if bad.any() else int(diff.argmax())
    # Integers and booleans are compared exactly: no tolerance to state.
    tolerance = f" (tolerance atol={atol:g}, rtol={rtol:g})" if expected.is_floating_point() else ""
    values = f"expected {_show(expected.flatten()[worst])}, got {_show(got.flatten()[worst])}{tolerance}"
    if got.dim() == 0:
        return f"{name}: {values}"
    return (f"{name}: {n_bad} of {got.numel()} values differ; the largest difference is at index "
            f"{_index(worst, got.shape)}: {values}")


def _show(entry: torch.Tensor) -> str:
    value = entry.item()
    return f"{value:.6g}" if isinstance(value, float) else str(value)
