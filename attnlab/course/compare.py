"""One comparison of a result with the expected tensor, shared by the learners' self-checks
(``selfcheck.expect_tensor``) and the grader's checks (``autograder.checks.expect.tensor``).

It looks at type, then shape, then dtype, then finiteness, then values, and returns the first
difference in plain words, or None. The values step names the worst entry: "largest difference
is at index (1, 0): expected 0.5, got 0.25 (tolerance atol=1e-05, rtol=0.0001)". Each caller
raises its own exception with that message and picks its own tolerances. Torch only: the
grader imports this module, so it must not import the grader back.

Every message is a translatable ``attnlab.course.messages.Message`` whose English text is the one
above. A difference is ``"{name}: {problem}"``, so that a caller can reuse the problem alone
(``difference.params["problem"]``) under its own words.
"""
from __future__ import annotations

import math

import torch

from .messages import Message, _


def describe(value) -> Message:
    """What a value is, in a few words (for "expected a tensor, got ...")."""
    if isinstance(value, torch.Tensor):
        return _("a tensor of shape {shape} and dtype {dtype}", shape=str(tuple(value.shape)), dtype=str(value.dtype))
    if isinstance(value, tuple):
        return _("a tuple of {n} values", n=len(value))
    if isinstance(value, list):
        return _("a list of {n} values", n=len(value))
    if value is None:
        return _("None")
    # What the grader's wire format gives back for objects that stay in (or cannot leave) its worker.
    if type(value).__name__ in ("Unsupported", "Handle") and hasattr(value, "type_name"):
        return _("an object of type {type}", type=str(value.type_name))
    return _("a {type}", type=type(value).__name__)


def _difference(name: str, problem: Message) -> Message:
    return _("{name}: {problem}", name=name, problem=problem)


def _index(flat_index: int, shape) -> tuple:
    idx = []
    for size in reversed(shape):
        idx.append(flat_index % size)
        flat_index //= size
    return tuple(reversed(idx))


def tensor_difference(name: str, got, expected: torch.Tensor, atol: float, rtol: float) -> Message | None:
    """The first way ``got`` differs from ``expected`` ("name: expected shape (2, 4), got (4, 2)"),
    or None when it is a tensor of the same shape and dtype whose values agree within
    ``atol + rtol * |expected|`` (NaN and infinities only where ``expected`` has the same)."""
    if not isinstance(got, torch.Tensor):
        return _difference(name, _("expected a tensor, got {got}", got=describe(got)))
    if tuple(got.shape) != tuple(expected.shape):
        return _difference(name, _("expected shape {expected}, got {got}", expected=str(tuple(expected.shape)),
                                   got=str(tuple(got.shape))))
    if got.dtype != expected.dtype:
        return _difference(name, _("expected dtype {expected}, got {got}", expected=str(expected.dtype),
                                   got=str(got.dtype)))
    # Compared on the CPU, without autograd: a self-check may be handed a CUDA tensor or one with grad.
    got, expected = got.detach().cpu(), expected.detach().cpu()
    if expected.is_floating_point():
        bad = ~torch.isfinite(got) & torch.isfinite(expected)
        if bad.any():
            if not got.dim():
                return _difference(name, _("{bad} of {total} entries are NaN or infinite, but all should be finite",
                                           bad=int(bad.sum()), total=got.numel()))
            first = _index(int(bad.flatten().nonzero()[0]), got.shape)
            return _difference(name, _("{bad} of {total} entries are NaN or infinite (the first at index {first}), "
                                       "but all should be finite", bad=int(bad.sum()), total=got.numel(),
                                       first=str(first)))
    try:
        torch.testing.assert_close(got, expected, atol=atol, rtol=rtol, equal_nan=True)
    except AssertionError:
        return _worst_difference(name, got, expected, atol, rtol)
    return None


def _worst_difference(name: str, got: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> Message:
    wide = torch.complex128 if expected.is_complex() else torch.float64  # no overflow, and booleans subtract
    g, e = got.to(wide).flatten(), expected.to(wide).flatten()
    same = (g == e) | (g.isnan() & e.isnan())  # equal infinities and NaN where NaN is expected agree
    diff = (g - e).abs().nan_to_num(nan=math.inf)
    diff = torch.where(same, torch.zeros_like(diff), diff)
    bad = ~same & (~torch.isfinite(g) | ~torch.isfinite(e) | (diff > atol + rtol * e.abs()))
    n_bad = max(int(bad.sum()), 1)
    worst = int(torch.where(bad, diff, torch.full_like(diff, -1.0)).argmax()) if bad.any() else int(diff.argmax())
    # Integers and booleans are compared exactly: no tolerance to state.
    shown = {"expected": _show(expected.flatten()[worst]), "got": _show(got.flatten()[worst])}
    if expected.is_floating_point():
        values = _("expected {expected}, got {got} (tolerance atol={atol}, rtol={rtol})", **shown,
                   atol=f"{atol:g}", rtol=f"{rtol:g}")
    else:
        values = _("expected {expected}, got {got}", **shown)
    if got.dim() == 0:
        return _difference(name, values)
    return _difference(name, _("{bad} of {total} values differ; the largest difference is at index {index}: {values}",
                               bad=n_bad, total=got.numel(), index=str(_index(worst, got.shape)), values=values))


def _show(entry: torch.Tensor) -> str:
    value = entry.item()
    return f"{value:.6g}" if isinstance(value, float) else str(value)
