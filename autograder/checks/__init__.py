"""Trusted checks, one module per assignment: ``test_<assignment>.py``.

A check module defines ``ASSIGNMENT``, ``POINTS`` (test name = nbgrader grade_id -> points),
optionally ``LIMITS`` (an ``autograder.protocol.Limits``), and one function per entry of
POINTS taking ``submission``. A check imports the course library and ``autograder.protocol``,
never ``autograder.grading``. See README.md in this folder.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def assignments() -> list[str]:
    """Every assignment that has a check module."""
    return sorted(m.name[len("test_"):] for m in pkgutil.iter_modules(__path__) if m.name.startswith("test_"))


def load(assignment: str) -> ModuleType:
    """The check module of ``assignment``, validated."""
    if assignment not in assignments():
        raise ValueError(f"no checks for assignment {assignment!r}; known: {', '.join(assignments()) or 'none'}")
    module = importlib.import_module(f"{__name__}.test_{assignment}")
    points = getattr(module, "POINTS", None)
    if not isinstance(points, dict) or not points:
        raise ValueError(f"{module.__name__} must define POINTS = {{test name: points}}")
    for name, value in points.items():
        if not callable(getattr(module, name, None)):
            raise ValueError(f"{module.__name__}: POINTS names {name!r} but there is no such test function")
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{module.__name__}: points of {name!r} must be a number >= 0")
    return module
