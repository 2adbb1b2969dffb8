"""``python -m autograder grade``: grade a class, safely, in parallel, resumably.

    python -m autograder grade --assignment ps02_attention alice.ipynb bob.ipynb
    python -m autograder grade --assignment ps02_attention handins/          # *.ipynb or one folder per student
    python -m autograder grade --assignment ps02_attention --submitted submitted/   # nbgrader: submitted/<student>/<assignment>/

Writes, under ``--course`` (default: the current folder):
``gradebook.db`` (nbgrader's SQLite gradebook), ``feedback/<student>/<assignment>/<assignment>.html``,
``grades_<assignment>.csv``, and ``.autograder/<assignment>/<student>.json`` (the cached result and
the hash of the notebook and of the checks: a re-run grades only new or changed submissions).
Every file is written atomically; a gradebook update is one transaction per student, so a run
killed at any point leaves consistent files and the next run finishes the job.
"""
from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass, replace

from autograder import checks
from autograder.protocol import Limits

from . import feedback
from .gradebook import GradebookWriter
from .runner import GradeResult, TestResult, grade_each
from .sandbox import sandbox_mode


@dataclass
class Job:
    student: str
    notebook: str | None  # None: nothing gradable was found
    note: str | None = None  # e.g. "graded `copy.ipynb` (expected ps02_attention.ipynb)"
    submitted_folder: str | None = None  # submitted/<student>/<assignment>/ of an nbgrader exchange

# What `nbgrader release_feedback` needs beside the feedback HTML, copied from the submission.
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


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


def find_notebook(folder: str, assignment: str) -> tuple[str | None, str | None]:
    """(path, note) of the notebook in a student's folder; a renamed one is accepted with a note."""
    for candidate in (os.path.join(folder, assignment + ".ipynb"), os.path.join(folder, assignment, assignment + ".ipynb")):
        if os.path.isfile(candidate):
            return candidate, None
    notebooks = sorted(p for p in glob.glob(os.path.join(folder, "**", "*.ipynb"), recursive=True)
                       if ".ipynb_checkpoints" not in p)
    if len(notebooks) == 1:
        name = os.path.relpath(notebooks[0], folder)
        return notebooks[0], f"graded {name}: the notebook should be named {assignment}.ipynb"
    if not notebooks:
        return None, f"no notebook found: submit {assignment}.ipynb"
    return None, f"{len(notebooks)} notebooks found and none is named {assignment}.ipynb: submit exactly one"


def collect(assignment: str, paths: list[str], submitted: str | None) -> list[Job]:
    jobs: list[Job] = []
    if submitted:
        if not os.path.isdir(submitted):
            raise SystemExit(f"--submitted {submitted}: no such folder")
        for student in sorted(os.listdir(submitted)):
            folder = os.path.join(submitted, student)
            if os.path.isdir(folder) and not student.startswith("."):
                target = os.path.join(folder, assignment)
                notebook, note = find_notebook(target, assignment) if os.path.isdir(target) else (
                    None, f"no {assignment} folder in the submission")
                jobs.append(Job(student, notebook, note, target if os.path.isdir(target) else None))
    for path in paths:
        if os.path.isfile(path):
            stem = os.path.splitext(os.path.basename(path))[0]
            student = os.path.basename(os.path.dirname(os.path.abspath(path))) if stem == assignment else stem
            jobs.append(Job(student, path))
        elif os.path.isdir(path):
            for entry in sorted(os.listdir(path)):
                full = os.path.join(path, entry)
                if entry.startswith("."):
                    continue
                if os.path.isfile(full) and entry.endswith(".ipynb"):
                    jobs.append(Job(os.path.splitext(entry)[0], full))
                elif os.path.isdir(full):
                    notebook, note = find_notebook(full, assignment)
                    jobs.append(Job(entry, notebook, note))
        else:
            raise SystemExit(f"{path}: no such file or folder")
    seen: dict[str, int] = {}
    for job in jobs:
        if job.student in seen:
            raise SystemExit(f"two submissions for student {job.student!r}: rename one")
        seen[job.student] = 1
    return jobs


def _python_files(package_dir: str) -> set[str]:
    return {os.path.join(d, f) for d, _, names in os.walk(package_dir) for f in names if f.endswith(".py")}


def checks_fingerprint(assignment: str) -> str:
    """Changes when the checks, the course library they compare with (all of ``attnlab``) or the
    code that runs a submission change: then every submission is graded again."""
    import attnlab

    checks.load(assignment)  # an unknown assignment fails here, with the list of known ones
    grader = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    here = os.path.dirname(os.path.abspath(__file__))
    files = (_python_files(os.path.dirname(os.path.abspath(attnlab.__file__)))
             | _python_files(os.path.dirname(os.path.abspath(checks.__file__)))
             | {os.path.join(grader, "protocol.py")}
             | {os.path.join(here, name + ".py") for name in ("worker", "sandbox", "submission", "runner")})
    root = os.path.dirname(grader)
    digest = hashlib.sha256()
    for path in sorted(files):
        with open(path, "rb") as handle:
            digest.update(os.path.relpath(path, root).encode() + b"\0" + handle.read())
    return digest.hexdigest()


def submission_key(job: Job, fingerprint: str) -> str:
    digest = hashlib.sha256(fingerprint.encode())
    if job.notebook and os.path.isfile(job.notebook):
        with open(job.notebook, "rb") as handle:
            digest.update(handle.read())
    digest.update((job.note or "").encode())
    return digest.hexdigest()


def unreadable_result(assignment: str, job: Job, points: dict) -> GradeResult:
    result = GradeResult(assignment, job.notebook or "", fatal=job.note)
    result.tests = [TestResult(name, 0, p, False, job.note or "no notebook") for name, p in points.items()]
    return result


def write_csv(path: str, points: dict, rows: dict[str, GradeResult]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "score", "max_score", *points, "problem"])
    for student in sorted(rows):
        result = rows[student]
        by_name = {t.name: t.points for t in result.tests}
        writer.writerow([student, f"{result.score:g}", f"{result.max_score:g}",
                         *(f"{by_name.get(n, 0):g}" for n in points), (result.fatal or "")[:200]])
    atomic_write(path, buffer.getvalue())


def run(args) -> int:
    module = checks.load(args.assignment)
    points = module.POINTS
    limits = getattr(module, "LIMITS", None) or Limits()
    if args.timeout:  # a copy: the check module's LIMITS stays as it is
        limits = replace(limits, startup_s=float(args.timeout), call_s=float(args.timeout))
    jobs = collect(args.assignment, args.submissions, args.submitted)
    if not jobs:
        raise SystemExit("nothing to grade: give notebooks, folders, or --submitted DIR")
    course = args.course
    os.makedirs(course, exist_ok=True)
    state_dir = os.path.join(course, ".autograder", args.assignment)
    fingerprint = checks_fingerprint(args.assignment)
    results: dict[str, GradeResult] = {}
    todo: list[tuple[Job, str]] = []
    for job in jobs:
        key = submission_key(job, fingerprint)
        state = os.path.join(state_dir, job.student + ".json")
        if not args.force and os.path.isfile(state):
            try:
                with open(state, encoding="utf-8") as handle:
                    saved = json.load(handle)
                if saved.get("key") == key:
                    results[job.student] = GradeResult.from_dict(saved["result"])
                    continue
            except (OSError, ValueError, TypeError, KeyError):
                pass  # a damaged state file: grade again
        todo.append((job, key))

    mode = sandbox_mode() if todo else "-"
    if mode == "none" and not args.quiet:
        print("warning: Linux namespaces are not available here; workers run with resource limits only "
              "and could read world-readable files (see autograder/grading/sandbox.py)", file=sys.stderr)
    if not args.quiet:
        print(f"{args.assignment}: {len(jobs)} submission(s), {len(jobs) - len(todo)} unchanged, "
              f"{len(todo)} to grade with {args.jobs} worker(s) (sandbox: {mode})", file=sys.stderr)

    with GradebookWriter(os.path.join(course, "gradebook.db"), args.assignment, points) as gradebook:
        progress = None
        if not args.quiet:
            from tqdm import tqdm
            progress = tqdm(total=len(todo), unit="nb", desc="grading", file=sys.stderr)

        def save(job: Job, key: str, result: GradeResult) -> None:
            gradebook.record(job.student, result)
            html_path = os.path.join(course, "feedback", job.student, args.assignment, args.assignment + ".html")
            atomic_write(html_path, feedback.render(job.student, result, job.note))
            for name in EXCHANGE_FILES if job.submitted_folder else ():
                source = os.path.join(job.submitted_folder, name)
                if os.path.isfile(source) and not os.path.islink(source) and os.path.getsize(source) < 4096:
                    with open(source, encoding="utf-8", errors="replace") as f:
                        atomic_write(os.path.join(os.path.dirname(html_path), name), f.read())
            # A grade spoilt by an internal error is recorded but not cached: the next run retries it.
            atomic_write(os.path.join(state_dir, job.student + ".json"),
                         json.dumps({"key": "" if result.internal_error else key, "note": job.note,
                                     "result": result.to_dict()}, indent=1))
            results[job.student] = result
            if progress:
                progress.update(1)

        by_student = {job.student: (job, key) for job, key in todo}
        for job, key in todo:  # nothing to run for these: no notebook was found
            if job.notebook is None:
                save(job, key, unreadable_result(args.assignment, job, points))
        notebooks = {job.student: job.notebook for job, _ in todo if job.notebook is not None}
        for student, result in grade_each(args.assignment, notebooks, args.jobs, limits, mode):
            save(*by_student[student], result)
        if progress:
            progress.close()
        # Cached students too: their gradebook rows may predate a lost database.
        graded = {job.student for job, _ in todo}
        for student, result in results.items():
            if student not in graded:
                gradebook.record(student, result)
    csv_path = os.path.join(course, f"grades_{args.assignment}.csv")
    write_csv(csv_path, points, results)
    retry = sorted(s for s, r in results.items() if r.internal_error)
    if retry:
        print(f"warning: internal errors (not the learners' fault) for {', '.join(retry)}: run the same command "
              "again to grade them again; details in .autograder/ state files", file=sys.stderr)
    if not args.quiet:
        total = sum(points.values())
        for student in sorted(results):
            print(f"{student:24s} {results[student].score:g}/{total:g}")
        print(f"gradebook: {os.path.join(course, 'gradebook.db')}; scores: {csv_path}; feedback: {os.path.join(course, 'feedback')}",
              file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Grade learners' notebooks safely.")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade submissions of one assignment",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("--assignment", required=True, help=f"one of: {', '.join(checks.assignments())}")
    g.add_argument("submissions", nargs="*", help="notebooks, or folders of notebooks / of student folders")
    g.add_argument("--submitted", help="an nbgrader submitted/ folder: submitted/<student>/<assignment>/")
    g.add_argument("--course", default=".", help="where the gradebook, feedback, CSV and cache go (default: .)")
    g.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    g.add_argument("--force", action="store_true", help="grade again even when nothing changed")
    g.add_argument("--timeout", type=float, help="seconds for the notebook to run, and for each call")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    args = parser.parse_args(argv)
    if args.command == "grade":
        try:
            return run(args)
        except ValueError as exc:  # unknown assignment and the like
            parser.exit(2, f"error: {exc}\n")
    return 2
