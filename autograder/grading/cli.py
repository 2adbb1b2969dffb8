"""``python -m autograder grade`` and ``merge``: grade a class, safely, in parallel, resumably, on
one machine, as the shards of a job array, or on a Dask cluster.

    python -m autograder grade --assignment ps02_attention alice.ipynb bob.ipynb
    python -m autograder grade --assignment ps02_attention handins/          # *.ipynb or one folder per student
    python -m autograder grade --assignment ps02_attention --submitted submitted/   # nbgrader: submitted/<student>/<assignment>/
    python -m autograder grade --assignment ps02_attention --submitted submitted/ --shard 2/4 --course out/2
    python -m autograder merge out/0 out/1 out/2 out/3 --course .          # the shards as one class
    python -m autograder grade --assignment ps02_attention --submitted submitted/ --dask tcp://scheduler:8786
    python -m autograder grade ... --deadline 2026-12-01T17:00+01:00 --late-penalty 10% --per day --received times.csv
    python -m autograder export --assignment ps02_attention --to canvas --roster roster.csv   # or --to moodle
    python -m autograder gradescope --assignment ps02_attention              # the zip for Gradescope

Writes, under ``--course`` (default: the current folder):
``gradebook.db`` (nbgrader's SQLite gradebook), ``feedback/<student>/<assignment>/<assignment>.html``,
``grades_<assignment>.csv``, and ``.autograder/<assignment>/<student>.json`` (the cached result, the
checks' fingerprint and the hash of the notebook and of the checks: a re-run grades only new or
changed submissions; ``merge`` joins these entries).

The pipeline: ``collect`` (the class, read as hostile; a shard's students) -> ``cache`` (what is
unchanged) -> ``schedule`` (where: this machine's workers or Dask's) -> ``record`` (gradebook,
feedback, cache, CSV: written by this process alone). One student's problem, even the grader's own,
stays that student's: the batch always ends with a CSV, and the exit code says what to do next.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, replace
from types import ModuleType

from autograder import checks
from autograder.protocol import Limits

from . import cache, late, lms, schedule
from .cache import Entry, checks_fingerprint, merge_entries, submission_key
from .collect import EXCHANGE_FILES, Job, UsageError, collect, exchange_file, parse_shard, shard_of
from .record import Recorder, atomic_write, summarise, unreadable_result
from .remote import GradingNodeError
from .runner import GradeResult
from .sandbox import mode_guarantees
from .text import clean

__all__ = ["main", "run", "merge", "collect", "checks_fingerprint", "UsageError"]


def limits_for(module: ModuleType, timeout: float | None) -> Limits:
    limits = getattr(module, "LIMITS", None) or Limits()
    if timeout:  # a copy: the check module's LIMITS stays as it is
        limits = replace(limits, startup_s=float(timeout), call_s=float(timeout))
    return limits


@dataclass
class Plan:
    """What a run does: grade ``todo``, keep the ``cached`` grades (student -> job, result, and
    whether the entry is complete: one of an earlier grader is written again, with its fingerprint)."""
    fingerprint: str
    keys: dict[str, str]  # student -> cache key (checks, notebook, note)
    todo: list[Job]
    cached: dict[str, tuple[Job, GradeResult, bool]]
    shard: tuple[int, int] | None
    students: int


def plan(args, module: ModuleType) -> Plan:
    """Collect the class (duplicates are refused class-wide), keep this shard's students, and look
    each one up in the cache."""
    jobs = collect(args.assignment, args.submissions, args.submitted)
    if not jobs:
        raise UsageError("nothing to grade: give notebooks, folders, or --submitted DIR")
    shard = parse_shard(args.shard) if args.shard else None
    if shard:
        jobs = [job for job in jobs if shard_of(job.student, shard[1]) == shard[0]]
    fingerprint = checks_fingerprint(args.assignment, module)
    keys = {job.student: submission_key(job, fingerprint) for job in jobs}
    todo, kept = [], {}
    for job in jobs:
        hit = None if args.force else cache.cached(args.course, args.assignment, job.student, keys[job.student])
        if hit is None:
            todo.append(job)
        else:
            kept[job.student] = (job, *hit)
    return Plan(fingerprint, keys, todo, kept, shard, len(jobs))


def run(args, module: ModuleType) -> int:
    """Grade: collect -> grade (here, or on Dask) -> record. Return the exit code: 0 every
    submission graded (learners' errors included), 1 some grades are internal errors (not the
    learners' fault) and a re-run grades them again, 2 a grading node is not set up for this run."""
    where = schedule.scheduler_for(args.jobs, args.dask)  # a wrong --dask fails here, before any work
    work = plan(args, module)
    os.makedirs(args.course, exist_ok=True)
    with where:
        if work.todo:
            where.start()  # a cluster starts here; --dask without a sandbox is refused here
        announce(args, where, work)
        with Recorder(args.course, args.assignment, module.POINTS, late=late_work(args)) as recorder:
            node_error = grade_and_record(args, module, where, recorder, work)
    if node_error is not None:
        print(f"error: {clean(node_error, one_line=True)[:1000]}; the grades received so far are saved: "
              "fix the node, then run the same command again", file=sys.stderr)
        return 2
    return summarise(recorder, args.quiet)


def announce(args, where: schedule.Scheduler, work: Plan) -> None:
    mode = where.mode if where.mode in ("root", "user", "none") else None  # None: each Dask node checks its own
    if work.todo and mode and (mode == "none" or not args.quiet):  # what this mode guarantees; a weak one even with -q
        print(("warning: " if mode == "none" else "") + mode_guarantees(mode) + " (see autograder/grading/README.md)",
              file=sys.stderr)
    if not args.quiet:
        part = f" in shard {work.shard[0]}/{work.shard[1]}" if work.shard else ""
        print(f"{args.assignment}: {work.students} submission(s){part}, {work.students - len(work.todo)} unchanged, "
              f"{len(work.todo)} to grade {where.describe()}", file=sys.stderr)


def grade_and_record(args, module: ModuleType, where: schedule.Scheduler, recorder: Recorder,
                     work: Plan) -> GradingNodeError | None:
    """Grade what changed and record each result as it arrives, keep the cached grades, write the
    CSV. Returns the error of a grading node that stopped the run, if one did."""
    assignment, points = args.assignment, module.POINTS
    progress = None
    if not args.quiet:
        from tqdm import tqdm
        progress = tqdm(total=len(work.todo), unit="nb", desc="grading", file=sys.stderr)

    def save(job: Job, result: GradeResult) -> None:
        exchange = {}
        for name in EXCHANGE_FILES if job.submitted_folder else ():
            text = exchange_file(job.submitted_folder, name)
            if text is not None:
                exchange[name] = text
        recorder.save(Entry(job.student, work.keys[job.student], work.fingerprint, result, job.note, exchange))
        if progress:
            progress.update(1)

    for job in work.todo:  # nothing to run for these: no notebook was found
        if job.notebook is None:
            save(job, unreadable_result(assignment, job.notebook, job.note, points))
    by_student = {job.student: job for job in work.todo}
    notebooks = {job.student: job.notebook for job in work.todo if job.notebook is not None}
    node_error = None
    try:
        for student, result in where.grade(assignment, notebooks, limits_for(module, args.timeout), work.fingerprint):
            save(by_student[student], result)
    except GradingNodeError as exc:  # what was graded is kept; the rest waits for the nodes to be fixed
        node_error = exc
    if progress:
        progress.close()
    # Cached students too: their gradebook rows may predate a lost database.
    for student, (job, result, complete) in work.cached.items():
        if complete:
            recorder.keep(student, result, job.note)
        else:
            save(job, result)
    recorder.finish()
    return node_error


def merge(args) -> int:
    """``merge OUT_DIRS... --course DEST``: the results of several runs (the shards of a class) as
    one gradebook, CSV and feedback tree, without grading anything again."""
    for out in args.results:
        if not os.path.isdir(out):
            raise UsageError(f"{clean(out, one_line=True)}: no such folder")
    assignments = [args.assignment] if args.assignment else sorted(
        {name for out in args.results if os.path.isdir(os.path.join(out, ".autograder"))
         for name in os.listdir(os.path.join(out, ".autograder")) if name in checks.assignments()})
    if not assignments:
        raise UsageError("no results to merge: give the --course folders of the runs (each holds .autograder/)")
    entries = {}
    for assignment in assignments:  # every check before anything is written
        module = _load(assignment)
        entries[assignment] = (module, merge_entries(args.results, assignment, checks_fingerprint(assignment, module)))
    code = 0
    for assignment, (module, merged) in entries.items():
        with Recorder(args.course, assignment, module.POINTS, late=late_work(args)) as recorder:
            for student in sorted(merged):
                recorder.save(merged[student])
            recorder.finish()
        if not args.quiet:
            print(f"{assignment}: {len(merged)} student(s) from {len(args.results)} folder(s)", file=sys.stderr)
        code = max(code, summarise(recorder, args.quiet))
    return code


def late_work(args):
    """The late-work policy of ``--deadline`` and its options, with the trusted receipt times
    (``--received`` or ``--exchange-inbound``); None without a deadline. See late.py."""
    if not getattr(args, "deadline", None):
        for flag in ("grace", "late_penalty", "per", "late_cap", "extensions", "received", "exchange_inbound"):
            if getattr(args, flag, None):
                raise UsageError(f"--{flag.replace('_', '-')} needs --deadline (the late-work policy's deadline)")
        return None
    try:
        policy = late.LatePolicy(
            late.parse_time(args.deadline, "--deadline"), penalty=args.late_penalty or "10%", per=args.per or "day",
            grace=late.parse_duration(args.grace, "--grace") if args.grace else late.dt.timedelta(0),
            cap=args.late_cap, extensions=late.read_extensions(args.extensions) if args.extensions else {})
        if args.received:
            received = late.read_received(args.received)
        elif args.exchange_inbound:
            received = late.received_from_exchange(args.exchange_inbound, args.assignment)
        else:
            received = {}
    except (late.LatePolicyError, OSError) as exc:
        raise UsageError(str(exc)) from None
    if not received:
        print("warning: --deadline without --received or --exchange-inbound: no trusted time of receipt is known, "
              "so no late penalty is applied (timestamp.txt and file times are the learner's to set)", file=sys.stderr)
    return late.LateWork(policy, received)


def add_late_options(parser) -> None:
    group = parser.add_argument_group("late work (see autograder/grading/late.py)")
    group.add_argument("--deadline", help="the deadline, ISO 8601 with a time zone: 2026-12-01T17:00+01:00")
    group.add_argument("--grace", help="a grace period after it: 15m, 1h")
    group.add_argument("--late-penalty", help="per started hour or day: points (2) or percent of the "
                       "maximum (10%%; the default)")
    group.add_argument("--per", choices=("hour", "day"), help="the unit the penalty counts (default: day)")
    group.add_argument("--late-cap", help="the most a submission can lose: points or percent (default: all of it)")
    group.add_argument("--extensions", help="a CSV student,extension (e.g. alice,2d): per-student extra time")
    group.add_argument("--received", help="a CSV student,received (ISO 8601) of when the course received each "
                       "notebook, e.g. exported from the LMS: the trusted time")
    group.add_argument("--exchange-inbound", help="an nbgrader exchange's inbound folder: the trusted time is the "
                       "kernel's change time of each student's last submission there")


def export(args) -> int:
    """``export --to canvas|moodle``: the gradebook's final scores (manual overrides and late penalties
    included) as the LMS's grade-import CSV, for the students of a roster."""
    from nbgrader.api import Gradebook

    from .gradebook import _alembic_on_path

    module = _load(args.assignment)
    database = os.path.join(args.course, "gradebook.db")
    if not os.path.isfile(database):
        raise UsageError(f"no gradebook at {clean(database, one_line=True)}: grade the assignment first")
    try:
        roster = lms.Roster.read(args.roster)
    except (lms.RosterError, OSError) as exc:
        raise UsageError(str(exc)) from None
    _alembic_on_path()
    gb = Gradebook("sqlite:///" + os.path.abspath(database), course_id="attention-from-scratch")
    try:
        scores = {sub.student.id: max(sub.score - sub.late_submission_penalty, 0.0)
                  for sub in gb.find_assignment(args.assignment).submissions}
    finally:
        gb.close()
    try:
        if args.to == "canvas":
            text, missing = lms.canvas_csv(args.title or args.assignment, scores, sum(module.POINTS.values()),
                                           roster, args.canvas_assignment_id)
        else:
            text, missing = lms.moodle_csv(args.title or args.assignment, scores, roster, args.identifier)
    except lms.RosterError as exc:
        raise UsageError(str(exc)) from None
    out = args.out or os.path.join(args.course, f"{args.to}_{args.assignment}.csv")
    atomic_write(out, text)
    if missing:
        print(f"warning: not in the roster, so not exported: {clean(', '.join(missing), one_line=True)}", file=sys.stderr)
    print(f"wrote {out}: import it in {args.to.capitalize()}'s gradebook", file=sys.stderr)
    return 0


def _load(assignment: str) -> ModuleType:
    try:
        return checks.load(assignment)
    except ValueError as exc:  # an unknown assignment, a check module without POINTS
        raise UsageError(str(exc)) from None


EPILOG = """exit codes (for batch schedulers):
  0  every submission was graded; a learner's broken or hostile notebook is graded too (0 points and a note)
  1  some grades are internal errors, not the learners' fault (listed on stderr, not cached): run the same command again
  2  the command itself is wrong (unknown assignment, no such folder, two submissions for one student, a bad --shard
     or --dask, a merge of results graded with other checks or two results for one student): nothing was graded;
     or a Dask node has other checks or no sandbox: the grades received before it are saved, fix the node and run again
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
    g.add_argument("--jobs", "-j", type=int, help="submissions graded at once on this machine (default: its cores)")
    g.add_argument("--force", action="store_true", help="grade again even when nothing changed")
    g.add_argument("--timeout", type=float, help="seconds for the notebook to run, and for each call")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    g.add_argument("--shard", metavar="K/N", help="grade only shard K of N (0 <= K < N; a stable hash of the student id), "
                   "e.g. --shard $SLURM_ARRAY_TASK_ID/4; join the shards' --course folders with `merge`")
    g.add_argument("--dask", metavar="ADDRESS", help="grade on the workers of a Dask cluster: its scheduler's address "
                   "(tcp://host:8786, tls://...) or local:N for N worker processes here (needs the [dask] extra)")
    add_late_options(g)
    m = sub.add_parser("merge", help="join the results of several runs (shards) into one gradebook, CSV and feedback",
                       description=merge.__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("results", nargs="+", metavar="OUT_DIR", help="the --course folders of the runs to join")
    m.add_argument("--course", required=True, help="where the joined gradebook, feedback and CSV go")
    m.add_argument("--assignment", help="only this assignment (default: every one found in the folders)")
    m.add_argument("--quiet", "-q", action="store_true", help="no summary")
    add_late_options(m)
    e = sub.add_parser("export", help="the gradebook's final scores as Canvas's or Moodle's grade-import CSV",
                       description=export.__doc__)
    e.add_argument("--assignment", required=True)
    e.add_argument("--to", required=True, choices=("canvas", "moodle"))
    e.add_argument("--roster", required=True, help="CSV: student (our id) and the LMS's ids (see autograder/grading/lms.py)")
    e.add_argument("--course", default=".", help="where gradebook.db is (default: .)")
    e.add_argument("--out", help="the CSV to write (default: <course>/<to>_<assignment>.csv)")
    e.add_argument("--title", help="the assignment's name in the LMS (default: the assignment)")
    e.add_argument("--canvas-assignment-id", help="Canvas: the id of an existing assignment column")
    e.add_argument("--identifier", default="email", choices=("email", "idnumber", "username"),
                   help="Moodle: the roster column Moodle maps to its users (default: email)")
    gs = sub.add_parser("gradescope", help="write the autograder zip to upload to Gradescope")
    gs.add_argument("--assignment", required=True)
    gs.add_argument("--out", help="the zip to write (default: <assignment>_gradescope.zip)")
    args = parser.parse_args(argv)
    try:
        if args.command == "merge":
            return merge(args)
        if args.command == "export":
            return export(args)
        if args.command == "gradescope":
            from . import gradescope

            _load(args.assignment)
            return gradescope.main(["build", "--assignment", args.assignment] + (["--out", args.out] if args.out else []))
        module = _load(args.assignment)  # the one time the check module is loaded and validated
        if args.dask and args.jobs is not None:
            raise UsageError("--jobs does not apply with --dask: each Dask worker thread grades one submission "
                             "at a time (local:N starts N worker processes)")
        args.jobs = args.jobs or os.cpu_count() or 1
        return run(args, module)
    except UsageError as exc:
        parser.exit(2, f"error: {clean(exc.code, one_line=True)}\n")
    # Anything else is a bug of the grader: its traceback and Python's exit code 1 (run again).
