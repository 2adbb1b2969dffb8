"""Comparisons with plain-words messages: type, then shape, then dtype, then finiteness, then values.

Every function raises ``CheckFailed`` (an AssertionError) whose message a learner can act on,
e.g. ``weights: expected shape (2, 4, 5), got (2, 5, 4)``.
"""
from __future__ import annotations

import math

import torch

DEFAULT_TOLERANCE = {torch.float64: (1e-10, 1e-7), torch.float32: (1e-5, 1e-4),
                     torch.float16: (1e-3, 1e-2), torch.bfloat16: (1e-2, 1e-2)}  # (atol, rtol)


class CheckFailed(AssertionError):
    """A check found a difference; the message is for the learner."""


def describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} values"
    if isinstance(value, list):
        return f"a list of {len(value)} values"
    if value is None:
        return "None"
    if type(value).__name__ in ("Unsupported", "Handle") and hasattr(value, "type_name"):
        return f"an object of type {value.type_name}"
    return f"a {type(value).__name__}"


def _index(flat_index: int, shape) -> tuple:
    idx = []
    for size in reversed(shape):
        idx.append(flat_index % size)
        flat_index //= size
    return tuple(reversed(idx))


def tensor(got, expected: torch.Tensor, name: str, atol: float | None = None, rtol: float | None = None) -> torch.Tensor:
    """Check that ``got`` is a tensor equal to ``expected`` (same shape, dtype, values)."""
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"{name}: expected a tensor, got {describe(got)}")
    if tuple(got.shape) != tuple(expected.shape):
        raise CheckFailed(f"{name}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    if got.dtype != expected.dtype:
        raise CheckFailed(f"{name}: expected dtype {expected.dtype}, got {got.dtype}")
    if expected.is_floating_point():
        bad = ~torch.isfinite(got) & torch.isfinite(expected)
        if bad.any():
            first = _index(int(bad.flatten().nonzero()[0]), got.shape)
            raise CheckFailed(f"{name}: {int(bad.sum())} of {got.numel()} entries are NaN or infinite "
                              f"(the first at index {first}), but all should be finite")
    default_atol, default_rtol = DEFAULT_TOLERANCE.get(expected.dtype, (0.0, 0.0))
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    try:
        torch.testing.assert_close(got, expected, atol=atol, rtol=rtol, equal_nan=True)
    except AssertionError:
        diff = (got.double() - expected.double()).abs().nan_to_num(nan=math.inf)
        worst = int(diff.flatten().argmax()) if diff.numel() else 0
        idx = _index(worst, got.shape)
        n_bad = int((diff > atol + rtol * expected.double().abs()).sum())
        raise CheckFailed(
            f"{name}: {n_bad} of {got.numel()} values differ; the largest difference is at index {idx}: "
            f"expected {expected.flatten()[worst].item():.6g}, got {got.flatten()[worst].item():.6g} "
            f"(tolerance atol={atol:g}, rtol={rtol:g})") from None
    return got


def sequence(got, length: int, name: str, kind=tuple) -> tuple:
    """Check that ``got`` is a tuple (or list) of ``length`` values."""
    if not isinstance(got, (tuple, list)) or (kind is tuple and not isinstance(got, tuple) and not isinstance(got, list)):
        raise CheckFailed(f"{name}: expected a tuple of {length} values, got {describe(got)}")
    if len(got) != length:
        raise CheckFailed(f"{name}: expected a tuple of {length} values, got {len(got)}")
    return tuple(got)


def number(got, expected: float, name: str, atol: float = 1e-6, rtol: float = 1e-6) -> float:
    """Check a numeric answer (a Python or 0-d tensor number)."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise CheckFailed(f"{name}: expected a number, got {describe(got)}")
    if not math.isfinite(got):
        raise CheckFailed(f"{name}: expected a finite number, got {got}")
    if abs(got - expected) > atol + rtol * abs(expected):
        raise CheckFailed(f"{name}: {got:g} is not the expected value")
    return float(got)


def true(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)
