"""The setup cell's marker, in a module of its own with no import, so that the grader can recognise
the cell without loading the release builder (and nbformat, slow to import) in every grading process.

Every exercise notebook begins with the setup cell (``release.setup_cell``): it installs the course
where it is missing (Colab) and is never sent to a worker (``autograder.grading.submission``).
"""
from __future__ import annotations

SETUP_METADATA = {"course": {"setup": True}, "tags": ["course-setup"]}


def is_setup_cell(cell) -> bool:
    """The setup cell, known by its metadata."""
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    return isinstance(meta, dict) and isinstance(meta.get("course"), dict) and meta["course"].get("setup") is True
