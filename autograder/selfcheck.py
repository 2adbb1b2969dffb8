"""Self-checks for learners: short, plain-words feedback inside the exercise notebooks.

``expect_tensor(name, got, expected)`` checks type, then shape, then dtype, then values, and
prints one line when all is well. A failure raises ``SelfCheckFailed``, which Jupyter shows as
one short message instead of a wall of traceback. These checks use small examples written in
the notebook; the grade comes from the hidden checks, not from these.
"""
from __future__ import annotations

import torch


class SelfCheckFailed(AssertionError):
    """A self-check found a difference."""

    def _render_traceback_(self):  # IPython shows this instead of the traceback
        return [f"\u2717 {self}"]


def expect_shape(name: str, got, shape) -> None:
    if not isinstance(got, torch.Tensor):
        raise SelfCheckFailed(f"{name}: expected a tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(shape):
        raise SelfCheckFailed(f"{name}: expected shape {tuple(shape)}, got {tuple(got.shape)}")
    print(f"\u2713 {name}: shape {tuple(shape)} as expected")


def expect_tensor(name: str, got, expected: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    if not isinstance(got, torch.Tensor):
        raise SelfCheckFailed(f"{name}: expected a tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(expected.shape):
        raise SelfCheckFailed(f"{name}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    if got.dtype != expected.dtype:
        raise SelfCheckFailed(f"{name}: expected dtype {expected.dtype}, got {got.dtype}")
    got_d, exp_d = got.detach().double(), expected.detach().double()
    if not torch.isfinite(got_d).all():
        raise SelfCheckFailed(f"{name}: contains NaN or infinity: {got.tolist()}")
    if not torch.allclose(got_d, exp_d, atol=atol, rtol=rtol):
        raise SelfCheckFailed(f"{name}: expected values {expected.tolist()}, got {got.detach().tolist()}")
    print(f"\u2713 {name}: shape, dtype and values as expected")
