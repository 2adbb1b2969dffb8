"""Self-checks for learners: short, plain-words feedback inside the exercise notebooks.

``expect_tensor(name, got, expected)`` checks type, then shape, then dtype, then finiteness, then
values, with the same comparison as the grader (``attnlab.course.compare``), and prints one line
when all is well. A failure raises ``SelfCheckFailed``, which Jupyter shows as one short message
instead of a wall of traceback. These checks use small examples written in the notebook; the
grade comes from the hidden checks, not from these.
"""
from __future__ import annotations

import sys

import torch

from .compare import tensor_difference


class SelfCheckFailed(AssertionError):
    """A self-check found a difference."""

    def _render_traceback_(self):  # IPython shows this instead of the traceback
        return [f"\u2717 {self}"]


def expect_defined(*names: str, hint: str = "write it in the answer cell above and run that cell") -> None:
    """Fail with one line naming the first of ``names`` that the notebook has not defined yet."""
    defined = sys._getframe(1).f_globals  # the notebook's namespace when called from a cell
    for name in names:
        if name not in defined:
            raise SelfCheckFailed(f"`{name}` is not defined yet: {hint}")


def expect_shape(name: str, got, shape) -> None:
    if not isinstance(got, torch.Tensor):
        raise SelfCheckFailed(f"{name}: expected a tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(shape):
        raise SelfCheckFailed(f"{name}: expected shape {tuple(shape)}, got {tuple(got.shape)}")
    print(f"\u2713 {name}: shape {tuple(shape)} as expected")


def expect_tensor(name: str, got, expected: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """The grader's comparison (``compare.tensor_difference``), with tolerances for hand-sized examples."""
    difference = tensor_difference(name, got, expected, atol, rtol)
    if difference is not None:
        raise SelfCheckFailed(difference)
    print(f"\u2713 {name}: shape, dtype and values as expected")


def _short_message(shell, etype, value, tb) -> str | None:
    """One line for the errors a learner with an unfinished notebook meets, or None for a real bug."""
    inner = tb
    while inner.tb_next is not None:
        inner = inner.tb_next
    code = inner.tb_frame.f_code
    if "ipykernel_" not in code.co_filename:  # raised inside a library: show the real traceback
        return None
    at_cell_level = code.co_name == "<module>"
    if issubclass(etype, NotImplementedError):
        what = "this answer is" if at_cell_level else f"`{getattr(code, 'co_qualname', code.co_name)}` is"
        return (f"\u2717 {what} not written yet: in its cell, replace `raise NotImplementedError()` "
                "with your code and run that cell, then run this check again.")
    if at_cell_level and issubclass(etype, NameError):
        return f"\u2717 {value}: write it in the answer cell above and run that cell first."
    if at_cell_level and issubclass(etype, KeyError) and value.args and value.args[0] not in shell.user_ns:
        return f"\u2717 {value.args[0]!r} is not defined: write it in the answer cell above and run that cell first."
    if at_cell_level and issubclass(etype, AssertionError) and str(value):
        return f"\u2717 {value}"
    return None


def _install_short_errors() -> None:
    """In a Jupyter kernel, show unfinished-exercise errors as one line instead of a traceback wall."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "_course_short_errors", False):
        return

    def handler(shell, etype, value, tb, tb_offset=None):
        text = _short_message(shell, etype, value, tb)
        if text is not None:
            try:
                value._render_traceback_ = lambda: [text]
            except AttributeError:  # an exception type without __dict__: keep its traceback
                pass
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)  # IPython ignores the return value

    shell.set_custom_exc((NotImplementedError, NameError, KeyError, AssertionError), handler)
    shell._course_short_errors = True


_install_short_errors()
