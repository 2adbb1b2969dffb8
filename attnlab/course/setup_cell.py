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


DEFAULT_LANGUAGE = "en"


def notebook_language(nb, strict: bool = False) -> str:
    """The language of an exercise notebook: ``metadata["attnlab"]["language"]`` ("zh_CN" in
    exercises_zh/), "en" when absent. A value that is not one of attnlab.course.messages.LANGUAGES is
    "en" (a learner's notebook must still be graded), or a ValueError with ``strict``."""
    meta = nb.get("metadata", {}) if isinstance(nb, dict) else {}
    course = meta.get("attnlab") if isinstance(meta, dict) else None
    language = course.get("language", DEFAULT_LANGUAGE) if isinstance(course, dict) else DEFAULT_LANGUAGE
    from .messages import LANGUAGES

    if isinstance(language, str) and language in LANGUAGES:
        return language
    if strict:
        raise ValueError(f"notebook language {language!r} is not one of the course's languages {LANGUAGES}")
    return DEFAULT_LANGUAGE
