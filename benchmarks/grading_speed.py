"""Grading time per submission: our sandboxed grader beside a bare ``jupyter nbconvert --execute`` of
the same notebook and ``nbgrader autograde`` of the same submissions, measured in one run.

    .venv/bin/python benchmarks/grading_speed.py                 # 3 interleaved rounds, mutants too
    .venv/bin/python benchmarks/grading_speed.py --rounds 5      # what the lead runs on a quiet machine
    .venv/bin/python benchmarks/grading_speed.py --rounds 1 --students 4 --nbgrader-students 1 --no-mutants
    .venv/bin/python benchmarks/grading_speed.py --baseline HEAD~3 --rounds 8 --skip-nbgrader

The submissions are the release with every solution cell filled from the source (honest, full
marks) and, for the score comparison, one notebook per mutant of ``tests/mutants/<assignment>/``.
Each round runs, in an order that rotates from round to round, with the 1-minute load average
recorded before each run and the CPU time of each command's whole process tree:

- ``nbconvert``: ``python -m nbconvert --execute --to notebook`` of one honest notebook;
- ``nbgrader``: ``nbgrader autograde`` of ``--nbgrader-students`` honest submissions;
- ``ours_jobs1_N`` / ``ours_jobs1_1``: ``python -m autograder grade --jobs 1`` of ``--students``
  honest submissions, and of one: their difference over N - 1 is the cost of one more submission
  (the ``marginal`` figure: what a class of hundreds pays per learner), the rest is startup;
- ``ours_jobs2_N`` / ``ours_jobs2_2``: the same with ``--jobs 2`` (two grading processes), of N and
  of 2: the marginal throughput of two jobs against one.

Medians over rounds (of figures computed within each round) go under "medians", the goals of
issue 15 under "goals". Mutants are graded once by nbgrader and by ours at each job count, and
every score must agree (``same_scores``). Writes benchmarks/results/grading_speed.json.

``--baseline REV`` (a git revision, exported with ``git archive``, or the folder of a checkout)
measures the cost of a change: the two checkouts grade the same notebooks with ``--jobs 1`` in
interleaved rounds, and the medians go under "before_after". ``--skip-nbgrader`` keeps the nbgrader
figures (and scores) of the existing JSON.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)
# Issue 15's goals: per submission at --jobs 1 at most this fraction of a bare execution of the
# notebook, at least this many times faster than nbgrader, and this throughput gain from 1 to 2 jobs.
GOAL_FRACTION_OF_NBCONVERT = 0.15
GOAL_SPEEDUP_OVER_NBGRADER = 10.0
GOAL_THROUGHPUT_2_JOBS = 1.8


def solved_notebook(assignment: str):
    source = nbformat.read(os.path.join(ROOT, "solutions", assignment, assignment + ".ipynb"), as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: MARKERS.sub("", c.source)
               for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(os.path.join(ROOT, "exercises", assignment, assignment + ".ipynb"), as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def mutant_notebooks(assignment: str) -> dict[str, nbformat.NotebookNode]:
    """{mutant name: notebook} of tests/mutants/<assignment>/ (the test suite's own reader)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    try:
        from _checks_mutants import mutant_notebook, mutants_of
    finally:
        sys.path.pop(0)
    return {name: mutant_notebook(assignment, mutant)[0] for name, mutant in mutants_of(assignment).items()}


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd, cwd, checkout: str = ROOT) -> dict:
    """Run ``cmd``: its wall time, the CPU time of its whole process tree (every process in it is
    waited for by its parent) and the 1-minute load average just before."""
    # PYTHONPATH: the grader of this checkout, not whatever copy the venv has installed.
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               PYTHONPATH=checkout)
    load, cpu = os.getloadavg()[0], children_cpu_s()
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(children_cpu_s() - cpu, 3), "load_average_1min": round(load, 2)}


def read_scores(course: str, assignment: str) -> dict[str, float]:
    with open(os.path.join(course, f"grades_{assignment}.csv"), newline="") as handle:
        return {row["student"]: float(row["score"]) for row in csv.DictReader(handle)}


def nbgrader_scores(course: str, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + os.path.join(course, "gradebook.db")) as gb:
        return {s.student.id: s.score for s in gb.find_assignment(assignment).submissions}


def grade_seconds(course: str, assignment: str) -> list[float]:
    """Each submission's own grading time (worker start, notebook, checks, kill), from the cache files."""
    folder = os.path.join(course, ".autograder", assignment)
    seconds = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        with open(os.path.join(folder, name)) as handle:
            seconds.append(json.load(handle)["result"]["seconds"])
    return seconds


def submissions(folder: str, assignment: str, notebooks: dict[str, nbformat.NotebookNode]) -> str:
    """An nbgrader submitted/ tree in ``folder``; returns ``folder``."""
    for student, nb in notebooks.items():
        os.makedirs(os.path.join(folder, student, assignment))
        nbformat.write(nb, os.path.join(folder, student, assignment, assignment + ".ipynb"))
    return folder


def nbgrader_course(folder: str, assignment: str, notebooks: dict[str, nbformat.NotebookNode]) -> str:
    """A scratch nbgrader course (its database filled by generate_assignment) with these submissions."""
    os.makedirs(os.path.join(folder, "solutions", assignment))
    shutil.copy(os.path.join(ROOT, "nbgrader_config.py"), folder)
    shutil.copy(os.path.join(ROOT, "solutions", assignment, assignment + ".ipynb"), os.path.join(folder, "solutions", assignment))
    timed([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"], folder)
    submissions(os.path.join(folder, "submitted"), assignment, notebooks)
    return folder


def ours(course: str, submitted: str, out: str, assignment: str, jobs: int, checkout: str = ROOT) -> dict:
    """``python -m autograder grade`` of the submissions in ``submitted`` into the folder ``out``."""
    run = timed([sys.executable, "-m", "autograder", "grade", "-q", "--assignment", assignment, "--jobs", str(jobs),
                 "--submitted", submitted, "--course", out], course, checkout)
    run["scores"] = read_scores(os.path.join(course, out), assignment)
    run["grade_s"] = grade_seconds(os.path.join(course, out), assignment)
    return run


def one_round(args, course: str, round_: int) -> dict:
    """Every measurement once, in an order that rotates with the round; figures computed within it."""
    a, n = args.assignment, args.students
    steps = {
        "nbconvert": lambda: timed([sys.executable, "-m", "nbconvert", "--execute", "--to", "notebook", "--output-dir",
                                    course, "--output", f"executed{round_}", "solved.ipynb"], course),
        "ours_jobs1_N": lambda: ours(course, "honest", f"r{round_}-jobs1-N", a, 1),
        "ours_jobs1_1": lambda: ours(course, "honest1", f"r{round_}-jobs1-1", a, 1),
        "ours_jobs2_N": lambda: ours(course, "honest", f"r{round_}-jobs2-N", a, 2),
        "ours_jobs2_2": lambda: ours(course, "honest2", f"r{round_}-jobs2-2", a, 2),
    }
    if not args.skip_nbgrader:
        steps["nbgrader"] = lambda: timed([sys.executable, "-m", "nbgrader", "autograde", a, "--force"],
                                          os.path.join(course, "nbgrader"))
    order = list(steps)
    order = order[round_ % len(order):] + order[:round_ % len(order)]
    runs = {label: steps[label]() for label in order}
    for label in ("ours_jobs1_N", "ours_jobs2_N"):
        if set(runs[label]["scores"].values()) != {float(args.full)}:
            raise SystemExit(f"{label}: not full marks: {runs[label]['scores']}")
    figures = {
        "nbconvert_s": runs["nbconvert"]["wall_s"],
        "nbconvert_cpu_s": runs["nbconvert"]["cpu_s"],
        "ours_jobs1_s_per_submission": runs["ours_jobs1_N"]["wall_s"] / n,
        "ours_jobs1_cpu_s_per_submission": runs["ours_jobs1_N"]["cpu_s"] / n,
        "ours_jobs1_marginal_s": (runs["ours_jobs1_N"]["wall_s"] - runs["ours_jobs1_1"]["wall_s"]) / (n - 1),
        "ours_jobs1_marginal_cpu_s": (runs["ours_jobs1_N"]["cpu_s"] - runs["ours_jobs1_1"]["cpu_s"]) / (n - 1),
        "ours_jobs1_startup_s": runs["ours_jobs1_1"]["wall_s"]
        - (runs["ours_jobs1_N"]["wall_s"] - runs["ours_jobs1_1"]["wall_s"]) / (n - 1),
        "ours_jobs2_s_per_submission": runs["ours_jobs2_N"]["wall_s"] / n,
        "ours_jobs2_marginal_s": (runs["ours_jobs2_N"]["wall_s"] - runs["ours_jobs2_2"]["wall_s"]) / (n - 2),
        "grade_s_per_submission": statistics.median(runs["ours_jobs1_N"]["grade_s"] or [float("nan")]),
    }
    if "nbgrader" in runs:
        figures["nbgrader_s_per_submission"] = runs["nbgrader"]["wall_s"] / args.nbgrader_students
        figures["nbgrader_cpu_s_per_submission"] = runs["nbgrader"]["cpu_s"] / args.nbgrader_students
    return {"order": order, "runs": runs, "figures": {k: round(v, 4) for k, v in figures.items()}}


def goals(medians: dict) -> dict:
    marginal1, marginal2 = medians["ours_jobs1_marginal_s"], medians["ours_jobs2_marginal_s"]
    out = {
        "fraction_of_nbconvert": round(marginal1 / medians["nbconvert_s"], 3),
        "fraction_of_nbconvert_end_to_end": round(medians["ours_jobs1_s_per_submission"] / medians["nbconvert_s"], 3),
        "fraction_of_nbconvert_goal": GOAL_FRACTION_OF_NBCONVERT,
        "throughput_2_jobs_over_1": round(marginal1 / marginal2, 2),
        "throughput_2_jobs_over_1_end_to_end": round(medians["ours_jobs1_s_per_submission"]
                                                     / medians["ours_jobs2_s_per_submission"], 2),
        "throughput_goal": GOAL_THROUGHPUT_2_JOBS,
    }
    if medians.get("nbgrader_s_per_submission"):
        out["speedup_over_nbgrader"] = round(medians["nbgrader_s_per_submission"] / marginal1, 1)
        out["speedup_over_nbgrader_end_to_end"] = round(medians["nbgrader_s_per_submission"]
                                                        / medians["ours_jobs1_s_per_submission"], 1)
        out["speedup_over_nbgrader_goal"] = GOAL_SPEEDUP_OVER_NBGRADER
    out["met"] = (out["fraction_of_nbconvert"] <= GOAL_FRACTION_OF_NBCONVERT
                  and out["throughput_2_jobs_over_1"] >= GOAL_THROUGHPUT_2_JOBS
                  and out.get("speedup_over_nbgrader", float("inf")) >= GOAL_SPEEDUP_OVER_NBGRADER)
    return out


def compare_scores(args, course: str, previous: dict) -> dict:
    """Honest and mutant submissions: nbgrader's scores and ours at each job count, which must agree."""
    a = args.assignment
    ours1 = ours(course, "equality", "equality-jobs1", a, 1)["scores"]
    ours2 = ours(course, "equality", "equality-jobs2", a, 2)["scores"]
    if args.skip_nbgrader:
        reference = previous.get("scores", {}).get("nbgrader") if isinstance(previous.get("scores"), dict) else None
    else:
        timed([sys.executable, "-m", "nbgrader", "autograde", a, "--force"], os.path.join(course, "nbgrader-equality"))
        reference = nbgrader_scores(os.path.join(course, "nbgrader-equality"), a)
    differ = {s: {"nbgrader": None if reference is None else reference.get(s), "ours_jobs1": ours1[s],
                  "ours_jobs2": ours2.get(s)}
              for s in sorted(ours1) if ours1[s] != ours2.get(s) or (reference is not None and reference.get(s) != ours1[s])}
    return {"nbgrader": reference, "ours_jobs1": ours1, "ours_jobs2": ours2, "differ": differ,
            "ours_same_at_both_job_counts": ours1 == ours2,
            "same_scores": not differ and reference is not None,
            "note": "nbgrader runs the notebook's visible self-checks too (test cells before the hidden run_check): "
                    "where one is stricter than the check, nbgrader gives fewer points than ours"}


def export(revision: str, folder: str) -> str:
    """The files of ``revision`` in ``folder`` (git archive); returns the commit's short hash."""
    commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return commit


def before_after(args, course: str) -> dict:
    """Interleaved runs of the baseline and this checkout, --jobs 1, the order alternating."""
    a, n = args.assignment, args.students
    baseline = args.baseline
    if not os.path.isdir(baseline):
        folder = os.path.join(course, "baseline")
        os.makedirs(folder)
        revision, baseline = export(args.baseline, folder), folder
    else:
        revision = os.path.abspath(baseline)
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for round_ in range(args.rounds):
        order = [("before", baseline), ("after", ROOT)]
        for label, checkout in order if round_ % 2 == 0 else order[::-1]:
            run = ours(course, "honest", f"{label}{round_}", a, 1, checkout)
            if set(run.pop("scores").values()) != {float(args.full)}:
                raise SystemExit(f"{label}: not full marks")
            runs[label].append({"wall_s_per_submission": round(run["wall_s"] / n, 3),
                                "load_average_1min": run["load_average_1min"], "grade_s": run["grade_s"]})

    def medians(label):
        per_run = runs[label]
        return {"wall_s_per_submission": round(statistics.median(r["wall_s_per_submission"] for r in per_run), 3),
                "grade_s_per_submission": round(statistics.median(s for r in per_run for s in r["grade_s"]), 3)}

    def paired(key):
        """Median over rounds of after/before within a round: the two ran back to back, under the same load."""
        pick = (lambda r: statistics.median(r["grade_s"])) if key == "grade_s" else (lambda r: r[key])
        return round(statistics.median(pick(a) / pick(b) for b, a in zip(runs["before"], runs["after"])), 3)

    before, after = medians("before"), medians("after")
    loads = [r["load_average_1min"] for per_run in runs.values() for r in per_run]
    return {
        "baseline": revision, "rounds": args.rounds, "students": n, "jobs": 1,
        "before": before, "after": after,
        "ratio_wall": round(after["wall_s_per_submission"] / before["wall_s_per_submission"], 3),
        "ratio_grade": round(after["grade_s_per_submission"] / before["grade_s_per_submission"], 3),
        "ratio_wall_paired": paired("wall_s_per_submission"),
        "ratio_grade_paired": paired("grade_s"),
        "quiet_machine": max(loads) < (os.cpu_count() or 1) / 2,
        "load_average_1min": {label: [r["load_average_1min"] for r in per_run] for label, per_run in runs.items()},
        "runs": runs,
        "note": "medians over interleaved rounds; grade_s is GradeResult.seconds (one submission from the start of its "
                "worker to its kill), wall_s is one command's time divided by the number of submissions; the paired "
                "ratios compare the two runs of each round (back to back, same load): the fairer figure on a busy "
                "machine; quiet_machine: every 1-minute load average below half the cores",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="ps02_attention")
    parser.add_argument("--students", type=int, default=16, help="honest submissions graded by ours in each run (>= 3)")
    parser.add_argument("--nbgrader-students", type=int, default=4, help="honest submissions nbgrader grades each round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians over them)")
    parser.add_argument("--no-mutants", dest="mutants", action="store_false", help="compare scores on honest work only")
    parser.add_argument("--skip-nbgrader", action="store_true", help="keep the nbgrader figures and scores of the JSON")
    parser.add_argument("--baseline", help="an earlier revision (or checkout folder) to compare with (interleaved runs, --jobs 1)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "grading_speed.json"))
    args = parser.parse_args()
    if args.students < 3:
        parser.error("--students must be at least 3 (the marginal cost of two jobs needs more than two)")
    load_before = [round(x, 2) for x in os.getloadavg()]  # the machine's own load, before ours adds to it
    previous = {}
    if args.skip_nbgrader and os.path.exists(args.out):
        with open(args.out) as handle:
            previous = json.load(handle)
    a, n = args.assignment, args.students
    sys.path.insert(0, ROOT)
    from autograder import checks

    args.full = sum(checks.load(a).POINTS.values())
    course = tempfile.mkdtemp(prefix="bench-grading-")
    try:
        honest = solved_notebook(a)
        nbformat.write(honest, os.path.join(course, "solved.ipynb"))
        submissions(os.path.join(course, "honest"), a, {f"student{i:03d}": honest for i in range(n)})
        submissions(os.path.join(course, "honest1"), a, {"student000": honest})
        submissions(os.path.join(course, "honest2"), a, {f"student{i:03d}": honest for i in range(2)})
        equality = {f"honest{i}": honest for i in range(2)}
        if args.mutants:
            equality.update({f"mutant-{name}": nb for name, nb in mutant_notebooks(a).items()})
        submissions(os.path.join(course, "equality"), a, equality)
        if not args.skip_nbgrader:
            nbgrader_course(os.path.join(course, "nbgrader"), a,
                            {f"student{i:03d}": honest for i in range(args.nbgrader_students)})
            nbgrader_course(os.path.join(course, "nbgrader-equality"), a, equality)
        rounds = [one_round(args, course, r) for r in range(args.rounds)]
        medians = {key: round(statistics.median(r["figures"][key] for r in rounds), 4) for key in rounds[0]["figures"]}
        if args.skip_nbgrader:  # this file's figure, or the one before the JSON had medians
            kept = previous.get("medians", {}).get("nbgrader_s_per_submission",
                                                   previous.get("nbgrader_autograde_s_per_submission"))
            if kept:
                medians["nbgrader_s_per_submission"] = kept
        scores = compare_scores(args, course, previous)
        result = {
            "assignment": a, "students": n, "nbgrader_students": args.nbgrader_students, "rounds": args.rounds,
            "mutants": args.mutants, "cpu_count": os.cpu_count(), "machine": platform.platform(),
            "python": platform.python_version(),
            "measured": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "medians": medians,
            "goals": goals(medians),
            "same_scores": scores["same_scores"],
            "quiet_machine": load_before[0] < (os.cpu_count() or 1) / 2,
            "load_average_before": load_before,
            "load_average_1min": [r["runs"][label]["load_average_1min"] for r in rounds for label in r["order"]],
            "scores": scores,
            "rounds_detail": rounds,
            "note": "seconds of wall-clock time unless named cpu_s (user + system time of a command's whole process "
                    "tree); *_s_per_submission: one command's time over its submissions, startup included; "
                    "ours_*_marginal_s: the cost of one more submission (the difference of two runs of the same round "
                    "over the difference in submissions), what a large class pays per learner; the goals compare the "
                    "marginal figures (and give the end-to-end ones beside); quiet_machine: the 1-minute load average "
                    "before the first run below half the cores (load_average_1min, before each run, includes the "
                    "benchmark's own earlier runs)" + ("; nbgrader figures and scores from an earlier run (--skip-nbgrader)"
                                              if args.skip_nbgrader else ""),
            "command": "python benchmarks/grading_speed.py " + " ".join(sys.argv[1:]),
        }
        if args.baseline:
            result["before_after"] = before_after(args, course)
    finally:
        shutil.rmtree(course, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
        handle.write("\n")
    print(json.dumps({k: result[k] for k in ("medians", "goals", "same_scores", "quiet_machine", "load_average_before",
                                             "load_average_1min")}
                     | {"ours_same_at_both_job_counts": scores["ours_same_at_both_job_counts"]}, indent=1))
    for student, differ in scores["differ"].items():
        print(f"scores differ for {student}: {differ}", file=sys.stderr)


if __name__ == "__main__":
    main()
