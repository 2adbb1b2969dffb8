"""Run a check inside a notebook's own kernel: what the hidden test cells do under plain nbgrader.

This is the *untrusted* path (the learner's code shares the process), kept so that
``nbgrader autograde`` gives the same points as ``python -m autograder grade`` for honest work.
The class-wide grading CLI never uses it: it runs the same checks against a sandboxed worker.
"""
from __future__ import annotations

from autograder import checks
from autograder import protocol


def _copy(value):
    """A plain-data copy, like the one a worker sends back (tensors detached and cloned)."""
    return protocol.decode(*protocol.encode(value))


class _LocalObject:
    def __init__(self, obj):
        self.obj = obj

    def __call__(self, *args, **kwargs):
        return _copy(self.obj(*_copy(list(args)), **_copy(kwargs)))

    def method(self, name, *args, **kwargs):
        return _copy(getattr(self.obj, name)(*_copy(list(args)), **_copy(kwargs)))


class LocalSubmission:
    """The ``Submission`` API over a namespace (``globals()`` of a notebook)."""

    def __init__(self, namespace: dict):
        self.namespace = namespace

    def _lookup(self, name):
        if name not in self.namespace:
            raise AssertionError(f"the notebook does not define `{name}`")
        return self.namespace[name]

    def call(self, name, *args, **kwargs):
        return _copy(self._lookup(name)(*_copy(list(args)), **_copy(kwargs)))

    def new(self, name, *args, **kwargs):
        return _LocalObject(self._lookup(name)(*_copy(list(args)), **_copy(kwargs)))

    def get(self, name):
        return _copy(self._lookup(name))


def run_check(assignment: str, test: str, namespace: dict) -> None:
    """Run one check of ``assignment`` against the functions in ``namespace``; raise if it fails."""
    module = checks.load(assignment)
    if test not in module.POINTS:
        raise ValueError(f"{assignment} has no check {test!r}")
    getattr(module, test)(LocalSubmission(namespace))
