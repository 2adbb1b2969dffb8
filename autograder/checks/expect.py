"""Comparisons with plain-words messages: type, then shape, then dtype, then finiteness, then values.

Every function raises ``CheckFailed`` (an AssertionError) whose message a learner can act on,
e.g. ``weights: expected shape (2, 4, 5), got (2, 5, 4)``. Every message is a translatable
``attnlab.course.messages.Message`` (``_()``), translated on the trusted side into the notebook's language.
"""
from __future__ import annotations

import math

import torch

from attnlab.course.compare import describe, tensor_difference
from attnlab.course.messages import _, render
from autograder.protocol import RAISED, StudentError

DEFAULT_TOLERANCE = {torch.float64: (1e-10, 1e-7), torch.float32: (1e-5, 1e-4),
                     torch.float16: (1e-3, 1e-2), torch.bfloat16: (1e-2, 1e-2)}  # (atol, rtol)


class CheckFailed(AssertionError):
    """A check found a difference; the message is for the learner: in English where the grader records
    it, in ``messages.LANGUAGE`` when ``str()`` shows it in a notebook (the hidden test cells under plain
    nbgrader, where the Chinese release's setup cell chose zh_CN)."""

    def __str__(self):
        return render(self.args[0]) if len(self.args) == 1 else super().__str__()


def tensor(got, expected: torch.Tensor, name: str, atol: float | None = None, rtol: float | None = None) -> torch.Tensor:
    """Check that ``got`` is a tensor equal to ``expected`` (same shape, dtype, values); tolerances
    by dtype unless given. The comparison is the self-checks' own (``attnlab.course.compare``)."""
    default_atol, default_rtol = DEFAULT_TOLERANCE.get(expected.dtype, (0.0, 0.0))
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    difference = tensor_difference(name, got, expected, atol, rtol)
    if difference is not None:
        raise CheckFailed(difference)
    return got


def sequence(got, length: int, name: str, kind=tuple) -> tuple:
    """Check that ``got`` is a tuple (or list) of ``length`` values."""
    if not isinstance(got, (tuple, list)) or (kind is tuple and not isinstance(got, tuple) and not isinstance(got, list)):
        raise CheckFailed(_("{name}: expected a tuple of {length} values, got {got}", name=name, length=length,
                            got=describe(got)))
    if len(got) != length:
        raise CheckFailed(_("{name}: expected a tuple of {length} values, got {got}", name=name, length=length,
                            got=len(got)))
    return tuple(got)


def number(got, expected: float, name: str, atol: float = 1e-6, rtol: float = 1e-6) -> float:
    """Check a numeric answer (a Python or 0-d tensor number)."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise CheckFailed(_("{name}: expected a number, got {got}", name=name, got=describe(got)))
    if not math.isfinite(got):
        raise CheckFailed(_("{name}: expected a finite number, got {got}", name=name, got=got))
    if abs(got - expected) > atol + rtol * abs(expected):
        raise CheckFailed(_("{name}: {got:g} is not the expected value", name=name, got=got))
    return float(got)


def true(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def tensor_or_mistake(got, expected: torch.Tensor, name: str, mistakes, atol: float | None = None,
                      rtol: float | None = None) -> torch.Tensor:
    """``tensor``, and when it fails because ``got`` is what a common mistake gives, a message that
    starts with the contract that mistake breaks ("the softmax runs over the keys ...").

    ``mistakes``: ``(wrong, explanation)`` or ``(wrong, explanation, (atol, rtol))`` computed on the
    trusted side from the same inputs. ``got`` matches ``wrong`` within the tolerances of its dtype
    (or the ones given); a mistake that gives the expected result on these inputs says nothing.
    Only for implement tasks: the expected tensor of a check may show in its message, a derived or
    predicted value never does.
    """
    try:
        return tensor(got, expected, name, atol, rtol)
    except CheckFailed as failure:
        for wrong, explanation, *tolerance in mistakes:
            wrong_atol, wrong_rtol = tolerance[0] if tolerance else DEFAULT_TOLERANCE.get(wrong.dtype, (0.0, 0.0))
            if (tensor_difference("", wrong, expected, *DEFAULT_TOLERANCE.get(expected.dtype, (0.0, 0.0))) is not None
                    and tensor_difference("", got, wrong, wrong_atol, wrong_rtol) is None):
                difference = failure.args[0]
                detail = getattr(difference, "params", {}).get("problem") or str(difference).removeprefix(f"{name}: ")
                raise CheckFailed(_("{name}: {explanation} ({detail})", name=name, explanation=explanation,
                                    detail=detail)) from None
        raise


def choice(got, name: str, choices) -> str:
    """A predicted answer given as one of ``choices`` (case and runs of spaces ignored) -> that choice.

    Says what the choices are when ``got`` is not one of them, never which one is right."""
    options = ", ".join(repr(c) for c in choices)
    if not isinstance(got, str):
        raise CheckFailed(_("{name}: expected one of the strings {options}, got {got}", name=name, options=options,
                            got=describe(got)))
    answer = " ".join(got.split()).lower()
    if answer not in choices:
        raise CheckFailed(_("{name}: expected one of {options}, got {got}", name=name, options=options, got=repr(got)))
    return answer


def close(got, value) -> bool:
    """``got`` equals ``value`` as a tensor: same shape and dtype, float values to rtol 1e-7, atol 1e-10
    (integers and booleans exactly). False for anything that is not a tensor."""
    if not (isinstance(got, torch.Tensor) and isinstance(value, torch.Tensor) and got.shape == value.shape
            and got.dtype == value.dtype):
        return False
    if value.is_floating_point():
        return bool(torch.allclose(got, value, rtol=1e-7, atol=1e-10))
    return bool(torch.equal(got, value))


def tensor_or_contract(got, expected: torch.Tensor, name: str, mistakes: dict) -> None:
    """``tensor(got, expected, name)``; but when ``got`` is wrong and ``close`` to the result of a typical
    mistake, the message names the contract it breaks. ``mistakes``: {the contract: () -> the mistake's
    result}, computed only when needed (a whole layer or model run on the trusted side); a mistake
    that cannot run on these shapes (RuntimeError) is skipped, as the learner's could not run either."""
    if isinstance(got, torch.Tensor) and not close(got, expected):
        for contract, mistake in mistakes.items():
            try:
                with torch.no_grad():
                    wrong = mistake()
            except RuntimeError:
                continue
            if close(got, wrong):
                raise CheckFailed(_("{name}: {contract}", name=name, contract=contract))
    tensor(got, expected, name)


def twin(submission, name: str, reference: torch.nn.Module, *args, hint: str | None = None, call: str | None = None,
         **kwargs):
    """The learner's module ``name(*args, **kwargs)`` in the worker, in float64 and eval mode, holding the
    weights of ``reference`` (the course's module of the same shape, also put in float64 and eval mode);
    returns (the remote module, the call as text for messages). A ``load_state_dict`` that raises (other
    names or shapes) fails the check with ``hint`` (default: the names of the reference's submodules)."""
    reference.double().eval()
    call = call or f"{name}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in kwargs.items()])})"
    module = submission.new(name, *args, **kwargs)
    module.method("double")
    module.method("eval")
    try:
        module.method("load_state_dict", dict(reference.state_dict()))
    except StudentError as exc:
        if exc.kind != RAISED:
            raise
        if hint is None:
            names = sorted({key.split(".")[0] for key in reference.state_dict()})
            hint = _("the submodules must be named {names}, with the shapes of the task", names=", ".join(names))
        raise CheckFailed(_("{call}.load_state_dict(the course's weights) raised {detail}: {hint}", call=call,
                            detail=exc.detail, hint=hint)) from None
    return module, call
