"""Run one assignment's checks against one submission: the trusted side of grading."""
from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field

from autograder import checks
from autograder.protocol import Limits

from .sandbox import sandbox_mode
from .submission import Submission


@dataclass
class TestResult:
    name: str  # = nbgrader grade_id
    points: float
    max_points: float
    passed: bool
    message: str = ""
    internal_error: bool = False  # the check itself failed: not the learner's fault, look at it


@dataclass
class GradeResult:
    assignment: str
    notebook: str
    tests: list[TestResult] = field(default_factory=list)
    notebook_errors: list[dict] = field(default_factory=list)
    fatal: str | None = None
    output: str = ""
    sandbox: str = ""
    seconds: float = 0.0

    @property
    def internal_error(self) -> bool:
        """Some check could not be run for reasons that are not the learner's: do not keep this grade."""
        return any(t.internal_error for t in self.tests)

    @property
    def score(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_points for t in self.tests)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(score=self.score, max_score=self.max_score)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "GradeResult":
        data = {k: v for k, v in data.items() if k not in ("score", "max_score")}
        data["tests"] = [TestResult(**t) for t in data.get("tests", [])]
        return cls(**data)


def grade(assignment: str, notebook: str, limits: Limits | None = None, mode: str | None = None) -> GradeResult:
    """Grade one notebook: every test of the assignment's check module, all-or-nothing per test."""
    start = time.monotonic()
    module = checks.load(assignment)
    limits = limits or getattr(module, "LIMITS", None) or Limits()
    result = GradeResult(assignment, notebook, sandbox=mode or sandbox_mode())
    submission = Submission.from_notebook(notebook, skip_grade_ids=set(module.POINTS), limits=limits, mode=mode)
    try:
        for name, max_points in module.POINTS.items():
            try:
                getattr(module, name)(submission)
            except AssertionError as exc:  # CheckFailed and StudentError
                result.tests.append(TestResult(name, 0, max_points, False, str(exc)[:2000]))
            except Exception:  # noqa: BLE001 - a bug in the check, not in the submission
                result.tests.append(TestResult(name, 0, max_points, False,
                                               "internal error in the check (not your fault; tell the course staff)",
                                               internal_error=True))
                result.output += "\n" + traceback.format_exc(limit=-3)
            else:
                result.tests.append(TestResult(name, max_points, max_points, True))
    finally:
        if submission.infrastructure_error:
            for test in result.tests:
                test.internal_error = True
        result.notebook_errors = submission.cell_errors
        result.fatal = submission.unreadable or submission.fatal
        result.output = (submission.output + result.output)[-20000:]
        submission.close()
    result.seconds = round(time.monotonic() - start, 3)
    return result


def crashed(assignment: str, notebook: str, details: str) -> GradeResult:
    """The result of a grading that failed for the grader's reasons: every check an internal error
    (not the learner's fault), so it is recorded but not cached and the next run grades it again."""
    message = "internal error of the grader (not your fault; tell the course staff)"
    result = GradeResult(assignment, notebook, fatal=message, output=details[-20000:])
    result.tests = [TestResult(name, 0, points, False, message, internal_error=True)
                    for name, points in checks.load(assignment).POINTS.items()]
    return result


def grade_each(assignment: str, notebooks: dict[str, str], jobs: int | None = None, limits: Limits | None = None,
               mode: str | None = None) -> Iterator[tuple[str, GradeResult]]:
    """Grade several notebooks ``{name: path}`` in parallel (threads, each driving one worker process
    at a time); yield ``(name, result)`` as each finishes, so that a caller can save it at once.

    The one way to grade several notebooks: the CLI and the tests use it alike."""
    checks.load(assignment)  # fail early, once, on an unknown assignment
    mode = mode or sandbox_mode()
    jobs = max(1, jobs or min(len(notebooks), os.cpu_count() or 1))
    with ThreadPoolExecutor(jobs) as pool:
        futures = {pool.submit(grade, assignment, notebook, limits, mode): key for key, notebook in notebooks.items()}
        try:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except Exception:  # noqa: BLE001 - a bug of the grader on this notebook: its grade only
                    result = crashed(assignment, notebooks[futures[future]], traceback.format_exc(limit=-3))
                yield futures[future], result
        finally:  # the caller stopped early (an error, Ctrl-C): start no more workers
            for future in futures:
                future.cancel()
