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

Everything inside the folders given is the learners' and is read as hostile (GRADING.md): no link
is followed (a linked notebook or student folder scores 0 with a note), no name goes into a glob
pattern, a student's folder is searched only ``MAX_DEPTH`` deep, and every name or message passes
``text.clean`` before it is written. One student's problem, even the grader's own, stays that
student's: the batch always ends with a CSV, and the exit code says whether to run it again.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass, replace

from autograder import checks
from autograder.protocol import Limits

from . import feedback
from .gradebook import GradebookWriter
from .runner import GradeResult, TestResult, grade_each
from .sandbox import mode_guarantees, sandbox_mode
from .text import clean, csv_cell, file_name, shown_name, student_id


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


# A student's folder is searched this deep (folder/ps02/ps02.ipynb is depth 1), looking at no more
# than this many entries: a tree that is deep, huge, or loops through links cannot stall the run.
MAX_DEPTH = 4
MAX_ENTRIES = 10_000
LINK_NOTE = "is a link: not graded (submit the notebook itself, not a link to one)"


class UsageError(SystemExit):
    """The instructor's command cannot run as given (exit code 2); never a learner's doing."""


def _scan(folder: str) -> tuple[list[str], list[str]]:
    """Notebooks and links in a student's folder, as paths relative to it: regular files only,
    and no link is ever followed (a link could point at solutions/ or at another student)."""
    notebooks, links, seen = [], [], 0
    stack = [("", 0)]
    while stack:
        relative, depth = stack.pop()
        with os.scandir(os.path.join(folder, relative)) as entries:
            for entry in entries:
                seen += 1
                if seen > MAX_ENTRIES:
                    raise OSError(f"more than {MAX_ENTRIES} files")
                if entry.name.startswith("."):  # hidden, .ipynb_checkpoints
                    continue
                path = os.path.join(relative, entry.name)
                if entry.is_symlink():
                    links.append(path)
                elif entry.is_dir(follow_symlinks=False):
                    if depth < MAX_DEPTH:
                        stack.append((path, depth + 1))
                elif entry.is_file(follow_symlinks=False) and entry.name.endswith(".ipynb"):
                    notebooks.append(path)
    return sorted(notebooks), sorted(links)


def _inside(path: str, folder: str) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, root]) == root


def find_notebook(folder: str, assignment: str) -> tuple[str | None, str | None]:
    """(path, note) of the notebook in a student's folder; a renamed one is accepted with a note.
    The notebook is a regular file whose real path lies inside the folder: links are refused."""
    if os.path.islink(folder):
        return None, f"your submission folder {LINK_NOTE}"
    try:
        notebooks, links = _scan(folder)
    except OSError as exc:
        return None, f"your submission folder could not be read ({clean(exc.strerror or exc, one_line=True)}): not graded"
    preferred = (assignment + ".ipynb", os.path.join(assignment, assignment + ".ipynb"))
    chosen = next((p for p in preferred if p in notebooks), None)
    note = None
    if chosen is None:
        linked = next((p for p in preferred if p in links), None)
        if linked:
            return None, f"{shown_name(linked)} {LINK_NOTE}"
        if len(notebooks) == 1:
            chosen = notebooks[0]
            note = f"graded {shown_name(chosen)}: the notebook should be named {assignment}.ipynb"
        elif not notebooks:
            ignored = f" (links are not followed: {', '.join(shown_name(p) for p in links[:5])})" if links else ""
            return None, f"no notebook found: submit {assignment}.ipynb{ignored}"
        else:
            return None, f"{len(notebooks)} notebooks found and none is named {assignment}.ipynb: submit exactly one"
    path = os.path.join(folder, chosen)
    if not _inside(path, folder):  # a folder swapped for a link since the scan
        return None, f"{shown_name(chosen)} {LINK_NOTE}"
    return path, note


def _entries(folder: str) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: os.fsencode(e.name))


def collect(assignment: str, paths: list[str], submitted: str | None) -> list[Job]:
    """One job per student. The paths given on the command line are the instructor's and may be
    links; everything found inside them is a learner's and is never followed through a link."""
    jobs: list[Job] = []
    if submitted:
        if not os.path.isdir(submitted):
            raise UsageError(f"--submitted {submitted}: no such folder")
        for entry in _entries(submitted):
            student = student_id(entry.name)
            if entry.is_symlink():
                jobs.append(Job(student, None, f"your submission folder {LINK_NOTE}"))
            elif entry.is_dir(follow_symlinks=False):
                target = os.path.join(entry.path, assignment)
                if os.path.islink(target):
                    jobs.append(Job(student, None, f"your {assignment} folder {LINK_NOTE}"))
                elif os.path.isdir(target):
                    notebook, note = find_notebook(target, assignment)
                    jobs.append(Job(student, notebook, note, target))
                else:
                    jobs.append(Job(student, None, f"no {assignment} folder in the submission"))
    for path in paths:
        if os.path.isfile(path):
            stem = os.path.splitext(os.path.basename(path))[0]
            name = os.path.basename(os.path.dirname(os.path.abspath(path))) if stem == assignment else stem
            jobs.append(Job(student_id(name), path))
        elif os.path.isdir(path):
            for entry in _entries(path):
                notebook_file = entry.name.endswith(".ipynb") and not entry.is_dir(follow_symlinks=False)
                student = student_id(entry.name[:-len(".ipynb")] if notebook_file else entry.name)
                if entry.is_symlink():
                    what = f"your notebook {shown_name(entry.name)}" if notebook_file else "your submission folder"
                    jobs.append(Job(student, None, f"{what} {LINK_NOTE}"))
                elif entry.is_file(follow_symlinks=False) and notebook_file:
                    jobs.append(Job(student, entry.path))
                elif entry.is_dir(follow_symlinks=False):
                    notebook, note = find_notebook(entry.path, assignment)
                    jobs.append(Job(student, notebook, note))
        else:
            raise UsageError(f"{clean(path, one_line=True)}: no such file or folder")
    seen: dict[str, int] = {}
    for job in jobs:
        if job.student in seen:
            raise UsageError(f"two submissions for student {job.student!r}: rename one")
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
             | {os.path.join(here, name + ".py") for name in ("worker", "sandbox", "submission", "runner", "text")})
    root = os.path.dirname(grader)
    digest = hashlib.sha256()
    for path in sorted(files):
        with open(path, "rb") as handle:
            digest.update(os.path.relpath(path, root).encode() + b"\0" + handle.read())
    return digest.hexdigest()


def _open_regular(path: str):
    """A learner's file opened for reading without following a link or blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path}: not a regular file")
    return os.fdopen(fd, "rb")


def submission_key(job: Job, fingerprint: str) -> str:
    digest = hashlib.sha256(fingerprint.encode())
    if job.notebook:
        try:
            with _open_regular(job.notebook) as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            digest.update(f"unreadable: {type(exc).__name__}".encode())
    digest.update((job.note or "").encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def exchange_file(folder: str, name: str) -> str | None:
    """nbgrader's timestamp.txt or submission_secret.txt of this submission: a small regular file
    in the submission's own folder, never one reached through a link."""
    try:
        with _open_regular(os.path.join(folder, name)) as handle:
            data = handle.read(4096)
    except OSError:
        return None
    return None if len(data) >= 4096 else clean(data.decode("utf-8", "replace"))


def unreadable_result(assignment: str, job: Job, points: dict) -> GradeResult:
    result = GradeResult(assignment, job.notebook or "", fatal=job.note)
    result.tests = [TestResult(name, 0, p, False, job.note or "no notebook") for name, p in points.items()]
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


def write_csv(path: str, points: dict, rows: dict[str, GradeResult], problems: dict[str, str] | None = None) -> None:
    """Scores as numbers; every text cell through ``text.csv_cell`` (no formula reaches a spreadsheet)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(name) for name in ("student", "score", "max_score", *points, "problem")])
    for student in sorted(rows):
        result = rows[student]
        by_name = {t.name: t.points for t in result.tests}
        problem = (problems or {}).get(student) or result.fatal or ""
        writer.writerow([csv_cell(student), csv_cell(result.score), csv_cell(result.max_score),
                         *(csv_cell(by_name.get(n, 0)) for n in points), csv_cell(problem[:200])])
    atomic_write(path, buffer.getvalue())


def run(args) -> int:
    """Grade; return the exit code: 0 every submission graded (learners' errors included),
    1 some grades are internal errors (not the learners' fault) and a re-run grades them again."""
    module = checks.load(args.assignment)
    points = module.POINTS
    limits = getattr(module, "LIMITS", None) or Limits()
    if args.timeout:  # a copy: the check module's LIMITS stays as it is
        limits = replace(limits, startup_s=float(args.timeout), call_s=float(args.timeout))
    jobs = collect(args.assignment, args.submissions, args.submitted)
    if not jobs:
        raise UsageError("nothing to grade: give notebooks, folders, or --submitted DIR")
    course = args.course
    os.makedirs(course, exist_ok=True)
    state_dir = os.path.join(course, ".autograder", args.assignment)
    fingerprint = checks_fingerprint(args.assignment)
    results: dict[str, GradeResult] = {}
    problems: dict[str, str] = {}  # students whose result could not be saved: the grader's problem, retried
    todo: list[tuple[Job, str]] = []
    for job in jobs:
        key = submission_key(job, fingerprint)
        state = os.path.join(state_dir, file_name(job.student) + ".json")
        if not args.force and os.path.isfile(state):
            try:
                with open(state, encoding="utf-8") as handle:
                    saved = json.load(handle)
                if saved.get("key") == key:
                    results[job.student] = clean_result(GradeResult.from_dict(saved["result"]))
                    continue
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                pass  # a damaged state file: grade again
        todo.append((job, key))

    mode = sandbox_mode() if todo else "-"
    if todo and (mode == "none" or not args.quiet):  # what this mode guarantees; a weak mode even with -q
        print(("warning: " if mode == "none" else "") + mode_guarantees(mode)
              + " (see autograder/grading/README.md)", file=sys.stderr)
    if not args.quiet:
        print(f"{args.assignment}: {len(jobs)} submission(s), {len(jobs) - len(todo)} unchanged, "
              f"{len(todo)} to grade with {args.jobs} worker(s) (sandbox: {mode})", file=sys.stderr)

    with GradebookWriter(os.path.join(course, "gradebook.db"), args.assignment, points) as gradebook:
        progress = None
        if not args.quiet:
            from tqdm import tqdm
            progress = tqdm(total=len(todo), unit="nb", desc="grading", file=sys.stderr)

        def save(job: Job, key: str, result: GradeResult) -> None:
            """Record one student. Whatever goes wrong here stays this student's: a note in the CSV,
            no cache (the next run tries again), and the batch goes on."""
            results[job.student] = result
            try:
                clean_result(result)
                gradebook.record(job.student, result)
                folder = os.path.join(course, "feedback", file_name(job.student), args.assignment)
                atomic_write(os.path.join(folder, args.assignment + ".html"), feedback.render(job.student, result, job.note))
                for name in EXCHANGE_FILES if job.submitted_folder else ():
                    text = exchange_file(job.submitted_folder, name)
                    if text is not None:
                        atomic_write(os.path.join(folder, name), text)
                # A grade spoilt by an internal error is recorded but not cached: the next run retries it.
                atomic_write(os.path.join(state_dir, file_name(job.student) + ".json"),
                             json.dumps({"key": "" if result.internal_error else key, "note": job.note,
                                         "result": result.to_dict()}, indent=1))
            except Exception as exc:  # noqa: BLE001 - the grader's problem with this student only
                problems[job.student] = f"internal error while saving this grade ({type(exc).__name__}): run again"
                print(f"warning: {clean(job.student, one_line=True)}: could not save the grade: "
                      f"{clean(repr(exc), one_line=True)[:300]}", file=sys.stderr)
                try:  # a state file from an earlier run must not pass for this grade
                    os.unlink(os.path.join(state_dir, file_name(job.student) + ".json"))
                except OSError:
                    pass
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
                try:
                    gradebook.record(student, result)
                except Exception as exc:  # noqa: BLE001 - as in save()
                    problems[student] = f"internal error while saving this grade ({type(exc).__name__}): run again"
    csv_path = os.path.join(course, f"grades_{args.assignment}.csv")
    write_csv(csv_path, points, results, problems)
    retry = sorted(s for s, r in results.items() if r.internal_error or s in problems)
    if retry:
        print(f"warning: internal errors (not the learners' fault) for {clean(', '.join(retry), one_line=True)}: "
              "run the same command again to grade them again; details in .autograder/ state files", file=sys.stderr)
    if not args.quiet:
        total = sum(points.values())
        for student in sorted(results):
            print(f"{clean(student, one_line=True):24s} {results[student].score:g}/{total:g}")
        print(f"gradebook: {os.path.join(course, 'gradebook.db')}; scores: {csv_path}; feedback: {os.path.join(course, 'feedback')}",
              file=sys.stderr)
    return 1 if retry else 0


EPILOG = """exit codes (for batch schedulers):
  0  every submission was graded; a learner's broken or hostile notebook is graded too (0 points and a note)
  1  some grades are internal errors, not the learners' fault (listed on stderr, not cached): run the same command again
  2  the command itself is wrong (unknown assignment, no such folder, two submissions for one student); nothing was graded
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Grade learners' notebooks safely.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade submissions of one assignment",
                       description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("--assignment", required=True, help=f"one of: {', '.join(checks.assignments())}")
    g.add_argument("submissions", nargs="*", help="notebooks, or folders of notebooks / of student folders")
    g.add_argument("--submitted", help="an nbgrader submitted/ folder: submitted/<student>/<assignment>/")
    g.add_argument("--course", default=".", help="where the gradebook, feedback, CSV and cache go (default: .)")
    g.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    g.add_argument("--force", action="store_true", help="grade again even when nothing changed")
    g.add_argument("--timeout", type=float, help="seconds for the notebook to run, and for each call")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    args = parser.parse_args(argv)
    if args.command != "grade":
        return 2
    try:
        checks.load(args.assignment)
    except ValueError as exc:  # an unknown assignment, a check module without POINTS
        parser.exit(2, f"error: {clean(exc, one_line=True)}\n")
    try:
        return run(args)
    except UsageError as exc:
        parser.exit(2, f"error: {clean(exc.code, one_line=True)}\n")
    # Anything else is a bug of the grader: its traceback and Python's exit code 1 (run again).
