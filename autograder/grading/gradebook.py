"""Write grades into an nbgrader gradebook (SQLite), one committed transaction per student.

**Manual grades win.** Grading again sets only each check's automatic score (``auto_score``). A
manual score or a comment that an instructor entered in formgrader is never changed or erased: for
nbgrader a grade's score is its manual score when there is one, so a manual override stays in force
over any later automatic score, from a re-run or from merged shards alike. To let the automatic
score count again, clear the manual score in formgrader. (The CSV and the feedback pages written by
``python -m autograder grade`` show the automatic grading; ``nbgrader export`` gives the final scores.)
"""
from __future__ import annotations

import datetime
import os
import sys
import warnings

from .runner import GradeResult


def _alembic_on_path() -> None:
    # nbgrader's Gradebook runs the `alembic` command, which lives beside this interpreter.
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _naive_utc(when: datetime.datetime) -> datetime.datetime:
    return when.astimezone(datetime.timezone.utc).replace(tzinfo=None)


class GradebookWriter:
    """Open once per run; ``record`` each student as results arrive (main thread only)."""

    def __init__(self, path: str, assignment: str, points: dict[str, float], course_id: str = "attention-from-scratch",
                 deadline: datetime.datetime | None = None):
        from nbgrader.api import Gradebook

        _alembic_on_path()
        self.assignment, self.notebook, self.points = assignment, assignment, points
        self.gb = Gradebook("sqlite:///" + os.path.abspath(path), course_id=course_id)
        self.deadline = deadline  # a late-work policy's (late.py): the assignment's due date in nbgrader
        if deadline is None:
            self.gb.update_or_create_assignment(assignment)
        else:
            self.gb.update_or_create_assignment(assignment, duedate=_naive_utc(deadline))
        self.gb.update_or_create_notebook(self.notebook, assignment)
        for name, max_score in points.items():
            self.gb.update_or_create_grade_cell(name, self.notebook, assignment, max_score=max_score, cell_type="code")

    def record(self, student: str, result: GradeResult, lateness=None) -> None:
        """Write the student's automatic scores; with ``lateness`` (a ``late.Lateness``), also the
        receipt time, the student's due date and nbgrader's late-submission penalty."""
        gb = self.gb
        try:
            from nbgrader.api import MissingEntry

            gb.update_or_create_student(student)
            try:
                gb.find_submission(self.assignment, student)
            except MissingEntry:
                with warnings.catch_warnings():
                    # nbgrader's add_submission triggers harmless SQLAlchemy autoflush warnings.
                    warnings.simplefilter("ignore")
                    gb.add_submission(self.assignment, student)
            scores = {t.name: t.points for t in result.tests}
            for name in self.points:
                grade = gb.find_grade(name, self.notebook, self.assignment, student)
                grade.auto_score = float(scores.get(name, 0.0))  # manual_score: the instructor's, kept
            if lateness is not None and self.deadline is not None:  # nbgrader keeps times as naive UTC
                submission = gb.find_submission(self.assignment, student)
                submission.timestamp = _naive_utc(lateness.received)
                extension = lateness.due - self.deadline
                submission.extension = extension if extension > datetime.timedelta(0) else None
                notebook = gb.find_submission_notebook(self.notebook, self.assignment, student)
                notebook.late_submission_penalty = lateness.penalty
            gb.db.commit()
        except Exception:
            gb.db.rollback()
            raise

    def scores(self) -> dict[str, float]:
        """Total score per student of this assignment, as the gradebook has it."""
        return {s.student.id: s.score for s in self.gb.find_assignment(self.assignment).submissions}

    def close(self) -> None:
        self.gb.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
