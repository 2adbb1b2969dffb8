"""Run one assignment's checks against one submission: the trusted side of grading.

``grade`` grades one notebook in this process. ``grade_each`` grades several: one after another in
this process with one job, else in that many grading processes (``python -c POOL_BOOT``), each
importing torch and the checks once and grading one notebook at a time, so that no two submissions
ever share a process's global state (the RNG that some checks seed, torch's settings) at the same
time. A grading process that dies costs only the notebook it was grading: that one is graded again
in a fresh process, and after a second death recorded as an internal error (not cached, so the next
run grades it again); the batch goes on. Ctrl-C or a caller that stops early stops them all (SIGTERM,
so that each closes its worker; SIGKILL after a grace period); they die with the grader in any case
(parent-death signal, and the end of their task pipe).
"""
from __future__ import annotations

import collections
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch

from attnlab.course.messages import Message, _, as_json, received, render
from autograder import checks
from autograder.protocol import Limits

from . import sandbox
from .sandbox import sandbox_mode
from .submission import Submission


@dataclass
class TestResult:
    name: str  # = nbgrader grade_id
    points: float
    max_points: float
    passed: bool
    message: str = ""  # in English
    internal_error: bool = False  # the check itself failed: not the learner's fault, look at it
    message_json: dict | None = None  # the message's Message.to_json(), translated where it is shown

    def shown_message(self, language: str = "en") -> str:
        """The message in ``language`` (its English text where it cannot be translated)."""
        return received(self.message, self.message_json, language) if self.message_json else self.message


@dataclass
class GradeResult:
    assignment: str
    notebook: str
    tests: list[TestResult] = field(default_factory=list)
    notebook_errors: list[dict] = field(default_factory=list)
    fatal: str | None = None  # in English
    output: str = ""
    sandbox: str = ""
    seconds: float = 0.0
    language: str = "en"  # the notebook's (its metadata's): the language of its feedback
    fatal_json: dict | None = None  # the fatal message's Message.to_json()

    def shown_fatal(self) -> str | None:
        """``fatal`` in the notebook's language."""
        if self.fatal is None or not self.fatal_json:
            return self.fatal
        return received(self.fatal, self.fatal_json, self.language)

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
                result.tests.append(TestResult(name, 0, max_points, False, english(exc)[:2000],
                                               message_json=message_json(exc)))
            except Exception:  # noqa: BLE001 - a bug in the check, not in the submission
                message = _("internal error in the check (not your fault; tell the course staff)")
                result.tests.append(TestResult(name, 0, max_points, False, message, internal_error=True,
                                               message_json=message.to_json()))
                result.output += "\n" + traceback.format_exc(limit=-3)
            else:
                result.tests.append(TestResult(name, max_points, max_points, True))
    finally:
        if submission.infrastructure_error:
            for test in result.tests:
                test.internal_error = True
        result.notebook_errors = submission.cell_errors
        result.fatal = submission.unreadable or submission.fatal
        result.fatal_json = _bounded(as_json(result.fatal))
        result.fatal = None if result.fatal is None else str(result.fatal)
        result.language = submission.language
        result.output = (submission.output + result.output)[-20000:]
        submission.close()
    result.seconds = round(time.monotonic() - start, 3)
    return result


MAX_MESSAGE_JSON = 20000  # characters of a message's JSON kept beside its English text


def _bounded(data: dict | None) -> dict | None:
    return data if data is not None and len(json.dumps(data)) <= MAX_MESSAGE_JSON else None


def english(exc: BaseException) -> str:
    """A failed check's message in English (the record, whatever language this process speaks)."""
    return render(exc.args[0], "en") if len(exc.args) == 1 and isinstance(exc.args[0], Message) else str(exc)


def message_json(exc: BaseException) -> dict | None:
    """The translatable form of a failed check's message (None when it is plain text or too long):
    it crosses from the grading process to the grader beside the English text, which stays the record."""
    message = exc.args[0] if len(exc.args) == 1 else None
    if len(english(exc)) > 2000:  # the English text is cut: the translation shows the same cut text
        return None
    return _bounded(as_json(message))


def crashed(assignment: str, notebook: str, details: str) -> GradeResult:
    """The result of a grading that failed for the grader's reasons: every check an internal error
    (not the learner's fault), so it is recorded but not cached and the next run grades it again."""
    message = _("internal error of the grader (not your fault; tell the course staff)")
    result = GradeResult(assignment, notebook, fatal=str(message), output=details[-20000:],
                         fatal_json=message.to_json(), language=_language(notebook))
    result.tests = [TestResult(name, 0, points, False, str(message), internal_error=True,
                               message_json=message.to_json())
                    for name, points in checks.load(assignment).POINTS.items()]
    return result


def _language(notebook: str) -> str:
    """The notebook's language for a result made without grading it ("en" when it cannot be read)."""
    from .submission import SubmissionUnreadable, notebook_language, read_notebook

    try:
        return notebook_language(read_notebook(notebook))
    except (SubmissionUnreadable, OSError):
        return "en"


def grade_each(assignment: str, notebooks: dict[str, str], jobs: int | None = None, limits: Limits | None = None,
               mode: str | None = None) -> Iterator[tuple[str, GradeResult]]:
    """Grade several notebooks ``{name: path}``, ``jobs`` at a time (default: one per core), each in a
    grading process of its own (see the module docstring); yield ``(name, result)`` as each
    finishes, so that a caller can save it at once.

    The one way to grade several notebooks: the CLI and the tests use it alike."""
    checks.load(assignment)  # fail early, once, on an unknown assignment
    mode = mode or sandbox_mode()
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(notebooks)))
    if jobs == 1:  # one at a time: this process is the one grading process
        sandbox.Template.prewarm()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # see serve_tasks
        try:
            for key, notebook in notebooks.items():
                try:
                    result = grade(assignment, notebook, limits, mode)
                except Exception:  # noqa: BLE001 - a bug of the grader on this notebook: its grade only
                    result = crashed(assignment, notebook, traceback.format_exc(limit=-3))
                yield key, result
        finally:
            torch.set_num_threads(threads)
        return
    yield from _grade_in_processes(assignment, notebooks, jobs, limits, mode)


# ------------------------------------------------------------------------------ grading processes
# The whole command line of a grading process after the interpreter: its configuration comes as the
# first line of its stdin, each task as one more line; each result goes out as one line of stdout.
POOL_BOOT = """import json, sys
boot = json.loads(sys.stdin.readline())
sys.path[:] = boot["path"]
from autograder.grading.runner import serve_tasks
serve_tasks(boot)
"""
MAX_TRIES = 2  # a notebook whose grading process died twice is recorded as an internal error
STOP_GRACE_S = 10.0  # after SIGTERM, the time a grading process gets to close its worker


def serve_tasks(boot: dict) -> None:
    """The main of a grading process: grade each notebook sent on stdin, one JSON line out for each."""
    sandbox.die_with_parent(boot["parent"])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader decides what a Ctrl-C stops
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unwinds: the worker being used is closed
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever else is printed goes to stderr, never into a result
    sandbox.Template.prewarm()  # its import of torch overlaps ours
    # One thread for the reference computations: a process per core already, and torch's threads
    # waiting for each other on a busy machine made a submission take several times longer.
    torch.set_num_threads(1)
    assignment, mode = boot["assignment"], boot["mode"]
    limits = Limits(**boot["limits"]) if boot["limits"] is not None else None
    checks.load(assignment)
    for line in sys.stdin:
        task = json.loads(line)
        try:
            result = grade(assignment, task["notebook"], limits, mode)
        except Exception:  # noqa: BLE001 - a bug of the grader on this notebook: its grade only
            result = crashed(assignment, task["notebook"], traceback.format_exc(limit=-3))
        out.write(json.dumps({"index": task["index"], "result": result.to_dict()}) + "\n")
        out.flush()
    # No tasks left: close the template and any cgroup still busy, and skip the interpreter's slow
    # teardown of torch (the grader waits for this exit).
    sandbox.Template.shutdown()
    sandbox.Cgroup.retry_pending(5.0)
    out.close()
    os._exit(0)


class _GradingProcess:
    """The grader's handle on one grading process: at most one task at a time."""

    def __init__(self, boot: dict):
        self.proc = sandbox.start_process([sys.executable, "-c", POOL_BOOT], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, start_new_session=True)
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.task: int | None = None
        self.buffer = b""
        self.ended = False
        self._write(boot)

    def _write(self, message: dict) -> None:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:  # it died: its stdout ends too, which the loop sees
            pass

    def send(self, index: int, notebook: str) -> None:
        self.task = index
        self._write({"index": index, "notebook": notebook})

    def read(self) -> list[dict]:
        """The results that arrived (``ended`` once its stdout closed: it exited or died)."""
        try:
            chunk = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            chunk = b""
        if not chunk:
            self.ended = True
        *lines, self.buffer = (self.buffer + chunk).split(b"\n")
        results = []
        for line in lines:
            try:
                message = json.loads(line)
                results.append({"index": int(message["index"]), "result": GradeResult.from_dict(message["result"])})
            except (ValueError, KeyError, TypeError):  # never sent by serve_tasks: treat it as a death
                self.ended = True
        return results

    def stop(self) -> None:
        """Ask it to finish (end of its tasks); interrupt it if it is grading."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.task is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)


def _grade_in_processes(assignment: str, notebooks: dict[str, str], jobs: int, limits: Limits | None,
                        mode: str) -> Iterator[tuple[str, GradeResult]]:
    keys = list(notebooks)
    todo = collections.deque(range(len(keys)))
    tries = collections.Counter()
    boot = {"path": sys.path, "parent": os.getpid(), "assignment": assignment, "mode": mode,
            "limits": asdict(limits) if limits is not None else None}
    selector = selectors.DefaultSelector()
    running: list[_GradingProcess] = []

    def start() -> None:
        process = _GradingProcess(boot)
        selector.register(process.fd, selectors.EVENT_READ, process)
        running.append(process)

    try:
        for _process in range(jobs):
            start()
        while todo or any(p.task is not None for p in running):
            for process in running:
                if process.task is None and todo:
                    index = todo.popleft()
                    process.send(index, notebooks[keys[index]])
            finished: list[tuple[str, GradeResult]] = []
            for key, _ in selector.select():
                process = key.data
                for message in process.read():
                    if message["index"] == process.task:
                        process.task = None
                        finished.append((keys[message["index"]], message["result"]))
                if process.ended:
                    selector.unregister(process.fd)
                    running.remove(process)
                    process.stop()
                    process.proc.wait()
                    if process.task is not None:  # it died grading this notebook
                        tries[process.task] += 1
                        if tries[process.task] < MAX_TRIES:
                            todo.appendleft(process.task)
                        else:
                            key = keys[process.task]
                            finished.append((key, crashed(assignment, notebooks[key],
                                                          f"its grading process died {MAX_TRIES} times "
                                                          f"(exit code {process.proc.returncode})")))
                    if todo and len(running) < jobs:
                        start()
            for process in running:  # give out the next notebooks before the caller saves these results
                if process.task is None and todo:
                    index = todo.popleft()
                    process.send(index, notebooks[keys[index]])
            yield from finished
    finally:  # done, Ctrl-C, or the caller stopped early: no grading process outlives this
        for process in running:
            process.stop()
        deadline = time.monotonic() + STOP_GRACE_S
        for process in running:
            try:
                process.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.proc.kill()
                process.proc.wait()
            process.proc.stdout.close()
        selector.close()
