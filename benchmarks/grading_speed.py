"""Grading time per submission: our sandboxed grader against plain ``nbgrader autograde``.

    .venv/bin/python benchmarks/grading_speed.py [--students 4] [--assignment ps02_attention]

Both grade the same notebooks (the release with every solution cell filled from the source) in a
scratch course folder; writes benchmarks/results/grading_speed.json. Both must give full marks.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
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


def timed(cmd, cwd) -> float:
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="ps02_attention")
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "grading_speed.json"))
    args = parser.parse_args()
    a, n = args.assignment, args.students
    course = tempfile.mkdtemp(prefix="bench-grading-")
    try:
        shutil.copy(os.path.join(ROOT, "nbgrader_config.py"), course)
        os.makedirs(os.path.join(course, "solutions", a))
        shutil.copy(os.path.join(ROOT, "solutions", a, a + ".ipynb"), os.path.join(course, "solutions", a))
        nbgrader = [sys.executable, "-m", "nbgrader"]
        timed(nbgrader + ["generate_assignment", a, "--force"], course)  # fills nbgrader's database
        nb = solved_notebook(a)
        for i in range(n):
            folder = os.path.join(course, "submitted", f"student{i}", a)
            os.makedirs(folder)
            nbformat.write(nb, os.path.join(folder, a + ".ipynb"))

        nbgrader_s = timed(nbgrader + ["autograde", a, "--force"], course)
        ours_1 = timed([sys.executable, "-m", "autograder", "grade", "-q", "--assignment", a, "--jobs", "1",
                        "--submitted", "submitted", "--course", "ours1"], course)
        jobs = os.cpu_count() or 1
        ours_n = timed([sys.executable, "-m", "autograder", "grade", "-q", "--assignment", a, "--jobs", str(jobs),
                        "--submitted", "submitted", "--course", "oursN"], course)

        from nbgrader.api import Gradebook
        with Gradebook("sqlite:///" + os.path.join(course, "gradebook.db")) as gb:
            nbgrader_scores = {s.student.id: s.score for s in gb.find_assignment(a).submissions}
        with open(os.path.join(course, "ours1", f"grades_{a}.csv"), newline="") as handle:
            our_scores = {row["student"]: float(row["score"]) for row in csv.DictReader(handle)}
        result = {
            "assignment": a, "students": n, "cpu_count": jobs, "machine": platform.platform(),
            "python": platform.python_version(),
            "nbgrader_autograde_s_per_submission": round(nbgrader_s / n, 2),
            "ours_jobs1_s_per_submission": round(ours_1 / n, 2),
            f"ours_jobs{jobs}_s_per_submission": round(ours_n / n, 2),
            "nbgrader_scores": nbgrader_scores, "our_scores": our_scores,
            "same_scores": nbgrader_scores == our_scores,
            "note": "wall-clock time of one command grading all students (its startup included), divided by the number of students; "
                    "nbgrader autograde runs one submission at a time; a shared, loaded machine makes these noisy",
            "command": f"python benchmarks/grading_speed.py --assignment {a} --students {n}",
        }
    finally:
        shutil.rmtree(course, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
        handle.write("\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
