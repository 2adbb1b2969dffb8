"""A cached grade is kept only while the code that produced it is unchanged.

``checks_fingerprint`` hashes the check modules, the whole course library (``attnlab``, its training
code and helpers included: a check may compare with any of them) and the code that runs a
submission. Editing any of these files must change it; so these tests edit copies and watch.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import attnlab
import pytest

from autograder import checks
from autograder.grading.cli import checks_fingerprint

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "ps02_attention"


@pytest.fixture
def copies(tmp_path, monkeypatch):
    """The fingerprint of copies of attnlab/ and autograder/checks/ instead of the checkout's."""
    shutil.copytree(ROOT / "attnlab", tmp_path / "attnlab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "autograder" / "checks", tmp_path / "checks", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(attnlab, "__file__", str(tmp_path / "attnlab" / "__init__.py"))
    monkeypatch.setattr(checks, "__file__", str(tmp_path / "checks" / "__init__.py"))
    return tmp_path


@pytest.mark.parametrize("edited", ["attnlab/attention.py", "attnlab/train/data.py", "attnlab/course/bugs.py",
                                    f"checks/test_{ASSIGNMENT}.py", "checks/expect.py"])
def test_editing_the_library_or_the_checks_changes_the_fingerprint(copies, edited):
    before = checks_fingerprint(ASSIGNMENT)
    assert checks_fingerprint(ASSIGNMENT) == before  # deterministic
    with open(copies / edited, "a") as handle:
        handle.write("\n# an edit\n")
    assert checks_fingerprint(ASSIGNMENT) != before, f"editing {edited} left the fingerprint unchanged"


def test_a_new_library_module_changes_the_fingerprint(copies):
    before = checks_fingerprint(ASSIGNMENT)
    (copies / "attnlab" / "new_module.py").write_text("X = 1\n")
    assert checks_fingerprint(ASSIGNMENT) != before
