"""Write what a run found, in the coordinator alone (SQLite has one writer): the gradebook, each
student's feedback page (and nbgrader's exchange files beside it), the cache entry, and the CSV.

Every file is written atomically; a gradebook update is one transaction per student, so a run
killed at any point leaves consistent files and the next run finishes the job. Whatever goes wrong
while saving one student stays that student's: a note in the CSV, no cache entry, and the run goes on.
"""
from __future__ import annotations

import csv
import io
import os
import sys
import tempfile

from . import feedback
from .cache import Entry, entry_path, state_dir
from .gradebook import GradebookWriter
from .runner import GradeResult, TestResult
from .text import clean, csv_cell, file_name


def atomic_write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def unreadable_result(assignment: str, notebook: str | None, note: str | None, points: dict) -> GradeResult:
    """The grade of a student for whom nothing could be run (no notebook, a link): 0 and the note."""
    result = GradeResult(assignment, notebook or "", fatal=note)
    result.tests = [TestResult(name, 0, p, False, note or "no notebook") for name, p in points.items()]
    return result


def clean_result(result: GradeResult) -> GradeResult:
    """Every string of a result made safe to write (``text.clean``): it came from the worker, that
    is from the learner, or from a file name."""
    result.notebook, result.output = clean(result.notebook), clean(result.output)
    result.fatal = None if result.fatal is None else clean(result.fatal)
    for test in result.tests:
        test.name, test.message = clean(test.name), clean(test.message)
    result.notebook_errors = [
        {"cell": e.get("cell") if isinstance(e.get("cell"), int) else clean(e.get("cell"), one_line=True)[:40],
         "error": clean(e.get("error"))[:2000]}
        for e in result.notebook_errors if isinstance(e, dict)]
    return result


def write_csv(path: str, points: dict, rows: dict[str, GradeResult], problems: dict[str, str] | None = None,
              lateness: dict | None = None) -> None:
    """Scores as numbers; every text cell through ``text.csv_cell`` (no formula reaches a spreadsheet).
    With a late-work policy (``lateness``: student -> ``late.Lateness`` or None), three more columns:
    when the course received the notebook, the penalty, and the score after it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    late_columns = ("received", "late_penalty", "final_score") if lateness is not None else ()
    writer.writerow([csv_cell(name) for name in ("student", "score", "max_score", *points, "problem", *late_columns)])
    for student in sorted(rows):
        result = rows[student]
        by_name = {t.name: t.points for t in result.tests}
        problem = (problems or {}).get(student) or result.fatal or ""
        row = [csv_cell(student), csv_cell(result.score), csv_cell(result.max_score),
               *(csv_cell(by_name.get(n, 0)) for n in points), csv_cell(problem[:200])]
        if lateness is not None:
            late = lateness.get(student)
            penalty = late.penalty if late else 0.0
            row += [csv_cell(late.received.isoformat() if late else "unknown: no penalty"), csv_cell(penalty),
                    csv_cell(max(result.score - penalty, 0.0))]
        writer.writerow(row)
    atomic_write(path, buffer.getvalue())


class Recorder:
    """The outputs of one run of one assignment under ``course``. ``save`` a new grade (gradebook,
    feedback, cache entry), ``keep`` a cached one (gradebook only: its files are there), then
    ``finish`` (the CSV). Main thread only. Use as a context manager."""

    def __init__(self, course: str, assignment: str, points: dict[str, float], late=None):
        self.course, self.assignment, self.points = course, assignment, points
        self.late = late  # a late.LateWork, or None: no late-work policy
        self.lateness: dict = {}  # student -> late.Lateness, or None where no receipt time is known
        self.results: dict[str, GradeResult] = {}
        self.problems: dict[str, str] = {}  # students whose result could not be saved: the grader's problem, retried
        os.makedirs(state_dir(course, assignment), exist_ok=True)  # `merge` tells "no student" from "never ran"
        self.gradebook = GradebookWriter(os.path.join(course, "gradebook.db"), assignment, points,
                                         deadline=late.policy.deadline if late else None)

    def _lateness(self, student: str, result: GradeResult):
        if self.late is None:
            return None
        self.lateness[student] = self.late.outcome(student, result.score, result.max_score)
        return self.lateness[student]

    def save(self, entry: Entry) -> None:
        """Record one newly graded student. A grade spoilt by an internal error is recorded with the
        key "" (never reused: the next run grades it again)."""
        student, result = entry.student, entry.result
        self.results[student] = result
        try:
            clean_result(result)
            if result.internal_error:
                entry.key = ""
            lateness = self._lateness(student, result)
            self.gradebook.record(student, result, lateness)
            folder = os.path.join(self.course, "feedback", file_name(student), self.assignment)
            atomic_write(os.path.join(folder, self.assignment + ".html"),
                         feedback.render(student, result, entry.note, lateness))
            for name, text in sorted(entry.exchange.items()):
                atomic_write(os.path.join(folder, name), text)
            atomic_write(entry_path(self.course, self.assignment, student), entry.to_json(self.assignment))
        except Exception as exc:  # noqa: BLE001 - the grader's problem with this student only
            self.problems[student] = f"internal error while saving this grade ({type(exc).__name__}): run again"
            print(f"warning: {clean(student, one_line=True)}: could not save the grade: "
                  f"{clean(repr(exc), one_line=True)[:300]}", file=sys.stderr)
            try:  # a state file from an earlier run must not pass for this grade
                os.unlink(entry_path(self.course, self.assignment, student))
            except OSError:
                pass

    def keep(self, student: str, result: GradeResult, note: str | None = None) -> None:
        """A cached grade: written into the gradebook again (it may predate a lost database). Under a
        late-work policy its feedback page is written again too, so that it says what the policy costs."""
        self.results[student] = clean_result(result)
        try:
            lateness = self._lateness(student, result)
            self.gradebook.record(student, result, lateness)
            if self.late is not None:
                folder = os.path.join(self.course, "feedback", file_name(student), self.assignment)
                atomic_write(os.path.join(folder, self.assignment + ".html"),
                             feedback.render(student, result, note, lateness))
        except Exception as exc:  # noqa: BLE001 - as in save()
            self.problems[student] = f"internal error while saving this grade ({type(exc).__name__}): run again"

    @property
    def csv_path(self) -> str:
        return os.path.join(self.course, f"grades_{self.assignment}.csv")

    def retry(self) -> list[str]:
        """Students whose grade is not the learner's doing: the next run grades them again."""
        return sorted(s for s, r in self.results.items() if r.internal_error or s in self.problems)

    def close(self) -> None:
        if self.gradebook is not None:
            self.gradebook.close()
            self.gradebook = None

    def finish(self) -> None:
        """Close the gradebook and write the CSV of every student recorded."""
        self.close()
        write_csv(self.csv_path, self.points, self.results, self.problems,
                  self.lateness if self.late is not None else None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def summarise(recorder: Recorder, quiet: bool) -> int:
    """The end of a run: a warning for what to run again, the scores; the exit code (0 or 1)."""
    retry = recorder.retry()
    if retry:
        print(f"warning: internal errors (not the learners' fault) for {clean(', '.join(retry), one_line=True)}: "
              "run the same command again to grade them again; details in .autograder/ state files", file=sys.stderr)
    if not quiet:
        total = sum(recorder.points.values())
        for student in sorted(recorder.results):
            print(f"{clean(student, one_line=True):24s} {recorder.results[student].score:g}/{total:g}")
        course = recorder.course
        print(f"gradebook: {os.path.join(course, 'gradebook.db')}; scores: {recorder.csv_path}; "
              f"feedback: {os.path.join(course, 'feedback')}", file=sys.stderr)
    return 1 if retry else 0
