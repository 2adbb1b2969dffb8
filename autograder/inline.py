"""Run a check inside a notebook's own kernel: what the hidden test cells do under plain nbgrader.

This is the *untrusted* path (the learner's code shares the process), kept so that
``nbgrader autograde`` gives the same points as ``python -m autograder grade`` for honest work.
The class-wide grading CLI never uses it: it runs the same checks against a sandboxed worker.
A failure of the learner's code raises the same ``protocol.StudentError`` (same kind, type names
and message) as the worker path does, chained to the learner's exception so the notebook shows
its traceback.
"""
from __future__ import annotations

from attnlab.course.messages import _
from autograder import checks
from autograder import protocol
from autograder.protocol import StudentError


# What the worker path adds to a missing name when no cell of the notebook failed.
NAME_HINT = _("check the name: it must be spelled exactly like this")


def _copy(value):
    """A plain-data copy, like the one a worker sends back (tensors detached and cloned)."""
    return protocol.decode(*protocol.encode(value))


def _run(label: str, function, args, kwargs, keep: bool = False):
    """Call the learner's ``function`` on copies of the arguments, as the worker would."""
    args, kwargs = _copy(list(args)), _copy(kwargs)
    try:
        result = function(*args, **kwargs)
    except (Exception, SystemExit) as exc:  # as the worker reports it (an interrupt of the kernel still stops)
        reply = protocol.raised_reply(exc)
        raise StudentError(reply["error"], protocol.RAISED, label, reply["error_type"], reply["error_types"]) from exc
    if keep:
        return result
    try:
        return _copy(result)
    except protocol.ProtocolError as exc:
        raise StudentError(_("the result could not be sent back: {error}", error=protocol.describe_error(exc)),
                           protocol.UNSUPPORTED) from None


def _callable(obj, label: str):
    if not callable(obj):
        raise StudentError(_("`{label}` is not a function or class", label=label), protocol.MISSING)
    return obj


class _LocalObject:
    def __init__(self, obj, name: str):
        self.obj, self.name = obj, name

    def __call__(self, *args, **kwargs):
        return _run(f"{self.name}(...)", _callable(self.obj, f"{self.name}(...)"), args, kwargs)

    def method(self, name, *args, **kwargs):
        label = f"{self.name}.{name}(...)"
        if name.startswith("_"):
            raise StudentError(_("private methods cannot be called"), protocol.PROTOCOL)
        if not hasattr(self.obj, name):
            raise StudentError(_("`{label}` has no method `{method}`", label=label, method=name), protocol.MISSING,
                               hint=NAME_HINT)
        return _run(label, _callable(getattr(self.obj, name), label), args, kwargs)


class LocalSubmission:
    """The ``Submission`` API over a namespace (``globals()`` of a notebook)."""

    def __init__(self, namespace: dict):
        self.namespace = namespace

    def _lookup(self, name):
        if name not in self.namespace:
            raise StudentError(_("the notebook does not define `{name}`", name=name), protocol.MISSING, hint=NAME_HINT)
        return self.namespace[name]

    def call(self, name, *args, **kwargs):
        return _run(f"`{name}`", _callable(self._lookup(name), name), args, kwargs)

    def new(self, name, *args, **kwargs):
        obj = _run(f"`{name}(...)`", _callable(self._lookup(name), name), args, kwargs, keep=True)
        return _LocalObject(obj, name)

    def get(self, name):
        try:
            return _copy(self._lookup(name))
        except protocol.ProtocolError as exc:
            raise StudentError(_("the result could not be sent back: {error}", error=protocol.describe_error(exc)),
                               protocol.UNSUPPORTED) from None


def run_check(assignment: str, test: str, namespace: dict) -> None:
    """Run one check of ``assignment`` against the functions in ``namespace``; raise if it fails."""
    module = checks.load(assignment)
    if test not in module.POINTS:
        raise ValueError(f"{assignment} has no check {test!r}")
    getattr(module, test)(LocalSubmission(namespace))
