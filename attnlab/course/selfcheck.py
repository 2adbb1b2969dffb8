"""Self-checks for learners: short, plain-words feedback inside the exercise notebooks.

``expect_tensor(name, got, expected)`` checks type, then shape, then dtype, then finiteness, then
values, with the same comparison as the grader (``attnlab.course.compare``), and prints one line
when all is well. A failure raises ``SelfCheckFailed``, which Jupyter shows as one short message
instead of a wall of traceback. These checks use small examples written in the notebook; the
grade comes from the hidden checks, not from these.

Every message is a translatable ``attnlab.course.messages.Message``, shown in the language of
``messages.set_language`` (the Chinese release's setup cell sets "zh_CN").
"""
from __future__ import annotations

import sys

import torch

from .compare import tensor_difference
from .messages import _, render


class SelfCheckFailed(AssertionError):
    """A self-check found a difference."""

    def __str__(self):  # in the language self-checks speak (the English text where no translation exists)
        return render(self.args[0]) if len(self.args) == 1 else super().__str__()

    def _render_traceback_(self):  # IPython shows this instead of the traceback
        return ["\u2717 " + str(self)]


def expect_defined(*names: str, hint: str | None = None) -> None:
    """Fail with one line naming the first of ``names`` that the notebook has not defined yet."""
    defined = sys._getframe(1).f_globals  # the notebook's namespace when called from a cell
    hint = hint or _("write it in the answer cell above and run that cell")
    for name in names:
        if name not in defined:
            raise SelfCheckFailed(_("`{name}` is not defined yet: {hint}", name=name, hint=hint))


def expect_shape(name: str, got, shape) -> None:
    if not isinstance(got, torch.Tensor):
        raise SelfCheckFailed(_("{name}: {problem}", name=name, problem=_(
            "expected a tensor, got {got}", got=type(got).__name__)))
    if tuple(got.shape) != tuple(shape):
        raise SelfCheckFailed(_("{name}: {problem}", name=name, problem=_(
            "expected shape {expected}, got {got}", expected=str(tuple(shape)), got=str(tuple(got.shape)))))
    print(render(_("\u2713 {name}: shape {shape} as expected", name=name, shape=str(tuple(shape)))))


def expect_tensor(name: str, got, expected: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """The grader's comparison (``compare.tensor_difference``), with tolerances for hand-sized examples."""
    difference = tensor_difference(name, got, expected, atol, rtol)
    if difference is not None:
        raise SelfCheckFailed(difference)
    print(render(_("\u2713 {name}: shape, dtype and values as expected", name=name)))


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
        if at_cell_level:
            return render(_("\u2717 this answer is not written yet: in its cell, replace `raise NotImplementedError()` "
                            "with your code and run that cell, then run this check again."))
        return render(_("\u2717 `{function}` is not written yet: in its cell, replace `raise NotImplementedError()` "
                        "with your code and run that cell, then run this check again.",
                        function=getattr(code, "co_qualname", code.co_name)))
    if at_cell_level and issubclass(etype, NameError):
        return render(_("\u2717 {error}: write it in the answer cell above and run that cell first.", error=str(value)))
    if at_cell_level and issubclass(etype, KeyError) and value.args and value.args[0] not in shell.user_ns:
        return render(_("\u2717 {name!r} is not defined: write it in the answer cell above and run that cell first.",
                        name=value.args[0]))
    if at_cell_level and issubclass(etype, AssertionError) and str(value):
        return "\u2717 " + str(value)
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
