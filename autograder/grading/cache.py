"""The result cache: ``<course>/.autograder/<assignment>/<student file name>.json``, one entry per student.

An entry is plain JSON: ``key`` (a hash of the checks' fingerprint, the notebook's bytes and the
collection note; "" for a grade spoilt by an internal error, which is never reused), ``fingerprint``
(of the checks that graded it), ``assignment``, ``student``, ``note``, ``exchange`` (nbgrader's
``timestamp.txt`` and ``submission_secret.txt``, for feedback) and ``result`` (``GradeResult.to_dict``).
A run reuses an entry whose key matches; ``merge`` joins the entries of several runs (the shards of
a class) and refuses entries graded with other checks, or two different grades of one student.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from types import ModuleType

from autograder import checks

from .collect import Job, UsageError, open_regular
from .runner import GradeResult
from .text import clean, file_name


def _python_files(package_dir: str) -> set[str]:
    return {os.path.join(d, f) for d, _, names in os.walk(package_dir) for f in names if f.endswith(".py")}


def checks_fingerprint(assignment: str, module: ModuleType | None = None) -> str:
    """Changes when the checks, the course library they compare with (all of ``attnlab``) or the
    code that runs a submission change: then every submission is graded again. The same files give
    the same fingerprint wherever they are installed (paths are relative to the folder holding
    ``autograder``), so grading nodes can compare theirs with the coordinator's."""
    import attnlab

    if module is None:
        checks.load(assignment)  # an unknown assignment fails here, with the list of known ones
    grader = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    here = os.path.dirname(os.path.abspath(__file__))
    files = (_python_files(os.path.dirname(os.path.abspath(attnlab.__file__)))
             | _python_files(os.path.dirname(os.path.abspath(checks.__file__)))
             | {os.path.join(grader, "protocol.py")}
             | {os.path.join(here, name + ".py") for name in ("worker", "sandbox", "submission", "runner", "text")})
    root = os.path.dirname(grader)
    digest = hashlib.sha256()
    for path in sorted(files):
        with open(path, "rb") as handle:
            digest.update(os.path.relpath(path, root).encode() + b"\0" + handle.read())
    return digest.hexdigest()


def submission_key(job: Job, fingerprint: str) -> str:
    digest = hashlib.sha256(fingerprint.encode())
    if job.notebook:
        try:
            with open_regular(job.notebook) as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            digest.update(f"unreadable: {type(exc).__name__}".encode())
    digest.update((job.note or "").encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass
class Entry:
    student: str
    key: str  # "" when the grade is an internal error: recorded, never reused
    fingerprint: str
    result: GradeResult
    note: str | None = None
    exchange: dict[str, str] = field(default_factory=dict)  # EXCHANGE_FILES name -> text

    def to_json(self, assignment: str) -> str:
        return json.dumps({"key": self.key, "fingerprint": self.fingerprint, "assignment": assignment,
                           "student": self.student, "note": self.note, "exchange": self.exchange,
                           "result": self.result.to_dict()}, indent=1)


def state_dir(course: str, assignment: str) -> str:
    return os.path.join(course, ".autograder", assignment)


def entry_path(course: str, assignment: str, student: str) -> str:
    return os.path.join(state_dir(course, assignment), file_name(student) + ".json")


def cached(course: str, assignment: str, student: str, key: str) -> tuple[GradeResult, bool] | None:
    """(result, complete) of the entry whose key is ``key``; None when there is none, it is damaged
    or it is stale. ``complete`` is False for an entry of an earlier grader that lacks its fingerprint
    or student id (the key proves which checks graded it: the caller writes it again, whole)."""
    try:
        with open(entry_path(course, assignment, student), encoding="utf-8") as handle:
            saved = json.load(handle)
        if saved.get("key") != key:
            return None
        return GradeResult.from_dict(saved["result"]), bool(saved.get("fingerprint") and saved.get("student"))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # a damaged or missing state file: grade again


# ------------------------------------------------------------------------------------ merge
def read_entries(course: str, assignment: str) -> list[tuple[str, Entry]]:
    """Every entry of one run's course folder, as (file, entry); a damaged one is a usage error
    (merging without it would drop a student silently)."""
    folder = state_dir(course, assignment)
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not name.endswith(".json") or name.startswith(".") or not os.path.isfile(path):
            continue
        where = clean(path, one_line=True)
        try:
            with open(path, encoding="utf-8") as handle:
                saved = json.load(handle)
            result = GradeResult.from_dict(saved["result"])
            entry = Entry(saved.get("student"), saved["key"], saved.get("fingerprint"), result, saved.get("note"),
                          {k: v for k, v in (saved.get("exchange") or {}).items() if isinstance(v, str)})
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise UsageError(f"{where}: not a readable result ({type(exc).__name__}): grade that run again") from None
        if not entry.fingerprint or not isinstance(entry.student, str):
            raise UsageError(f"{where}: graded by an earlier version of the grader (no fingerprint or student id "
                             "in it): grade that run again with the same command, then merge")
        if file_name(entry.student) + ".json" != name or saved.get("assignment") not in (None, assignment):
            raise UsageError(f"{where}: holds the result of {clean(entry.student, one_line=True)!r} "
                             f"({clean(saved.get('assignment'), one_line=True)}): not a result of this file")
        found.append((path, entry))
    return found


def _same_grade(a: Entry, b: Entry) -> bool:
    """Two entries of one student agree: the same submission (key) graded to the same checks' results."""
    def grades(entry):
        return [(t.name, t.points, t.passed, t.message) for t in entry.result.tests], entry.result.fatal
    return a.key == b.key and grades(a) == grades(b)


def merge_entries(courses: list[str], assignment: str, fingerprint: str) -> dict[str, Entry]:
    """The entries of several runs (shards) as one class: {student: entry}. Refuses (a usage error)
    a folder without results of the assignment, entries graded with checks other than ``fingerprint``
    (this machine's), and two different grades of one student; the same grade found twice is kept once."""
    merged: dict[str, tuple[str, Entry]] = {}
    for course in courses:
        if not os.path.isdir(state_dir(course, assignment)):
            raise UsageError(f"{clean(course, one_line=True)}: no results of {assignment} "
                             f"(no .autograder/{assignment}/ folder): did its shard run?")
        for path, entry in read_entries(course, assignment):
            if entry.fingerprint != fingerprint:
                raise UsageError(
                    f"{clean(path, one_line=True)} was graded with other checks (fingerprint {entry.fingerprint[:12]}, "
                    f"here {fingerprint[:12]}): every shard and this machine need the same checkout of the course; "
                    "grade the shards again with it")
            earlier = merged.get(entry.student)
            if earlier and not _same_grade(earlier[1], entry):
                raise UsageError(
                    f"two different results for student {clean(entry.student, one_line=True)!r}: "
                    f"{clean(earlier[0], one_line=True)} and {clean(path, one_line=True)} (a student is graded by "
                    "one shard only: were these folders made with different --shard counts or submissions?)")
            merged.setdefault(entry.student, (path, entry))
    return {student: entry for student, (_, entry) in merged.items()}
