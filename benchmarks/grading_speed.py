"""Grading time per submission: our sandboxed grader against plain ``nbgrader autograde``.

    .venv/bin/python benchmarks/grading_speed.py [--students 4] [--assignment ps02_attention]
    .venv/bin/python benchmarks/grading_speed.py --baseline HEAD~3 --rounds 8 --skip-nbgrader

Both grade the same notebooks (the release with every solution cell filled from the source) in a
scratch course folder; writes benchmarks/results/grading_speed.json. Both must give full marks.

``--baseline REV`` (a git revision, exported with ``git archive``, or the folder of a checkout)
measures the cost of a change: the two checkouts grade the same notebooks with
``--jobs 1`` in interleaved rounds (the order alternating), with the load average recorded before
each run, and the medians go under "before_after" in the JSON. ``--skip-nbgrader`` keeps the
nbgrader figures already in the JSON.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)


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


def timed(cmd, cwd, checkout: str = ROOT) -> float:
    # PYTHONPATH: the grader of this checkout, not whatever copy the venv has installed.
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               PYTHONPATH=checkout)
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return elapsed


def read_scores(course: str, assignment: str) -> dict[str, float]:
    with open(os.path.join(course, f"grades_{assignment}.csv"), newline="") as handle:
        return {row["student"]: float(row["score"]) for row in csv.DictReader(handle)}


def grade_seconds(course: str, assignment: str) -> list[float]:
    """Each submission's own grading time (worker start, notebook, checks, kill), from the cache files."""
    folder = os.path.join(course, ".autograder", assignment)
    seconds = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name)) as handle:
            seconds.append(json.load(handle)["result"]["seconds"])
    return seconds


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
            out = os.path.join(course, f"{label}{round_}")
            load = os.getloadavg()[0]
            wall = timed([sys.executable, "-m", "autograder", "grade", "-q", "--assignment", a, "--jobs", "1",
                          "--submitted", "submitted", "--course", out], course, checkout)
            scores = read_scores(out, a)
            if set(scores.values()) != {10.0}:
                raise SystemExit(f"{label}: not full marks: {scores}")
            runs[label].append({"wall_s_per_submission": round(wall / n, 3), "load_average_1min": round(load, 2),
                                "grade_s": grade_seconds(out, a)})

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
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "grading_speed.json"))
    parser.add_argument("--baseline", help="an earlier revision (or checkout folder) to compare with (interleaved runs, --jobs 1)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds with --baseline")
    parser.add_argument("--skip-nbgrader", action="store_true", help="keep the nbgrader figures of the JSON")
    args = parser.parse_args()
    if args.skip_nbgrader and os.path.exists(args.out):
        with open(args.out) as handle:
            previous = json.load(handle)
    else:
        previous = {}
    a, n = args.assignment, args.students
    course = tempfile.mkdtemp(prefix="bench-grading-")
    try:
        shutil.copy(os.path.join(ROOT, "nbgrader_config.py"), course)
        os.makedirs(os.path.join(course, "solutions", a))
        shutil.copy(os.path.join(ROOT, "solutions", a, a + ".ipynb"), os.path.join(course, "solutions", a))
        nbgrader = [sys.executable, "-m", "nbgrader"]
        if not args.skip_nbgrader:
            timed(nbgrader + ["generate_assignment", a, "--force"], course)  # fills nbgrader's database
        nb = solved_notebook(a)
        for i in range(n):
            folder = os.path.join(course, "submitted", f"student{i}", a)
            os.makedirs(folder)
            nbformat.write(nb, os.path.join(folder, a + ".ipynb"))

        if args.skip_nbgrader:
            nbgrader_s, nbgrader_scores = None, previous.get("nbgrader_scores")
        else:
            nbgrader_s = timed(nbgrader + ["autograde", a, "--force"], course)
            from nbgrader.api import Gradebook
            with Gradebook("sqlite:///" + os.path.join(course, "gradebook.db")) as gb:
                nbgrader_scores = {s.student.id: s.score for s in gb.find_assignment(a).submissions}
        ours_1 = timed([sys.executable, "-m", "autograder", "grade", "-q", "--assignment", a, "--jobs", "1",
                        "--submitted", "submitted", "--course", "ours1"], course)
        jobs = os.cpu_count() or 1
        ours_n = timed([sys.executable, "-m", "autograder", "grade", "-q", "--assignment", a, "--jobs", str(jobs),
                        "--submitted", "submitted", "--course", "oursN"], course)
        our_scores = read_scores(os.path.join(course, "ours1"), a)
        result = {
            "assignment": a, "students": n, "cpu_count": jobs, "machine": platform.platform(),
            "python": platform.python_version(),
            "nbgrader_autograde_s_per_submission": (round(nbgrader_s / n, 2) if nbgrader_s is not None else
                                                    previous.get("nbgrader_autograde_s_per_submission")),
            "ours_jobs1_s_per_submission": round(ours_1 / n, 2),
            f"ours_jobs{jobs}_s_per_submission": round(ours_n / n, 2),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "nbgrader_scores": nbgrader_scores, "our_scores": our_scores,
            "same_scores": nbgrader_scores == our_scores,
            "note": "wall-clock time of one command grading all students (its startup included), divided by the number of students; "
                    "nbgrader autograde runs one submission at a time; a shared, loaded machine makes these noisy"
                    + ("; nbgrader figures from an earlier run (--skip-nbgrader)" if args.skip_nbgrader else ""),
            "command": f"python benchmarks/grading_speed.py --assignment {a} --students {n}",
        }
        if args.baseline:
            result["before_after"] = before_after(args, course)
    finally:
        shutil.rmtree(course, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
        handle.write("\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
