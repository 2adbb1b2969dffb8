"""Grading again never erases a manual score (autograder/grading/gradebook.py), checked through nbgrader's API."""
from __future__ import annotations

from nbgrader.api import Gradebook

from autograder.grading.gradebook import GradebookWriter
from autograder.grading.runner import GradeResult
from autograder.grading.runner import TestResult as CheckResult  # not a pytest class

POINTS = {"test_a": 2.0, "test_b": 3.0}


def result(a: float, b: float) -> GradeResult:
    return GradeResult("ps99", "x.ipynb", tests=[CheckResult("test_a", a, 2, a == 2), CheckResult("test_b", b, 3, b == 3)])


def test_a_manual_score_survives_grading_again_and_overrides_the_new_automatic_one(tmp_path):
    path = tmp_path / "gradebook.db"
    with GradebookWriter(str(path), "ps99", POINTS) as writer:
        writer.record("alice", result(2, 0))
    # The instructor overrides test_b in formgrader (what it does through the same API) and comments.
    gb = Gradebook(f"sqlite:///{path}", course_id="attention-from-scratch")
    grade = gb.find_grade("test_b", "ps99", "ps99", "alice")
    grade.manual_score = 2.5
    gb.db.commit()
    gb.close()
    with GradebookWriter(str(path), "ps99", POINTS) as writer:  # a later run grades alice again
        writer.record("alice", result(0, 3))
        scores = writer.scores()
    gb = Gradebook(f"sqlite:///{path}", course_id="attention-from-scratch")
    try:
        kept = gb.find_grade("test_b", "ps99", "ps99", "alice")
        assert kept.manual_score == 2.5 and kept.auto_score == 3.0 and kept.score == 2.5
        fresh = gb.find_grade("test_a", "ps99", "ps99", "alice")
        assert fresh.manual_score is None and fresh.auto_score == 0.0 and fresh.score == 0.0
    finally:
        gb.close()
    assert scores == {"alice": 2.5}
