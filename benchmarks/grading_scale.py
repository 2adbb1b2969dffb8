"""Grading a large class: throughput of one machine's pool, of shards joined by ``merge``, and of Dask.

    .venv/bin/python benchmarks/grading_scale.py                       # 200 submissions, every configuration
    .venv/bin/python benchmarks/grading_scale.py --students 4 --configs shards2,dask2 --out /tmp/x.json   # smoke

One class of ps02_attention, generated: in every 20 submissions, 10 correct, 4 partly wrong (the
mutants of tests/mutants/ps02_attention/ in turn), 2 crashing (a syntax error, ``os._exit`` in a
function), 1 timing out (a loop at top level) and 3 hostile (a detached looping child, a memory
bomb in a function, a fork bomb), as in the grader's hostile tests. Each configuration grades the
whole class from scratch with ``python -m autograder`` (a fresh process, as an instructor runs it):

- ``jobs1``, ``jobs2``: this machine's pool with 1 or 2 workers;
- ``shards2``: two ``--shard K/2 --jobs 1`` processes at once (as a job array runs them), then ``merge``;
- ``dask2``: ``--dask local:2``, a LocalCluster of two single-threaded worker processes.

Writes benchmarks/results/grading_scale.json: per configuration the wall time, submissions per
second, the median and 95th percentile of one submission's grading time (``GradeResult.seconds``,
from its worker's start to its kill), and the floor (the same command again with nothing to grade:
start-up, collection, cache look-ups, gradebook and CSV), and whether every configuration wrote the
same CSV. ``--markdown`` prints the table for book/grading_at_scale.md. Numbers from a shared or
loaded machine say little: the JSON records the load average before each run.
"""
from __future__ import annotations

import argparse
import glob
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a script or through runpy
from grading_speed import solved_notebook as solved_release  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSIGNMENT = "ps02_attention"
DIRECTIVE = re.compile(r"#[ \t]*(fails|replaces|appends|appends-bug):[ \t]*(.*?)[ \t]*$")
CONFIGS = ("jobs1", "jobs2", "shards2", "dask2")

ATTENTION = "def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):\n"
CRASHING = [
    {"replace": {"scaled_dot_product_attention": "def scaled_dot_product_attention(q, k, v:\n    pass"}},
    {"replace": {"scaled_dot_product_attention": ATTENTION + "    import os\n    os._exit(3)\n"}},
]
TIMING_OUT = [{"append": ["while True:\n    pass"]}]
HOSTILE = [
    {"append": ["import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        while True:\n"
                "            time.sleep(0.05)\n    os._exit(0)"]},
    {"replace": {"scaled_dot_product_attention": ATTENTION + "    hog = [torch.empty(10**8) for _ in range(1000)]\n"}},
    {"append": ["import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"]},
]
# In every 20 submissions, spread so that a small class (--students 5) has some of each kind.
MIX = ["correct", "mutant", "correct", "crashing", "correct", "hostile", "correct", "mutant", "correct", "timing_out",
       "correct", "mutant", "correct", "hostile", "correct", "crashing", "correct", "mutant", "correct", "hostile"]


def solved_notebook():
    return solved_release(ASSIGNMENT)  # grading_speed.py's: the release with every answer filled in


def mutants() -> list[dict]:
    """The mutants of tests/mutants/ps02_attention/ that replace or append cells (the format is
    tests/_checks_mutants.py's; ``appends-bug`` ones are left out), as changes to a notebook."""
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "mutants", ASSIGNMENT, "*.py"))):
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines(keepends=True)
        first = DIRECTIVE.match(lines[0]) if lines else None
        if not first or not first.group(2).strip():  # a correct variant, not a wrong answer
            continue
        change: dict = {"replace": {}, "append": []}
        section = None
        for line in lines[1:]:
            match = DIRECTIVE.match(line)
            if match is None:
                if section is not None:
                    section.append(line)
            elif match.group(1) == "replaces":
                section = change["replace"].setdefault(match.group(2), [])
            elif match.group(1) == "appends":
                section = []
                change["append"].append(section)
            else:
                change = None
                break
        if change:
            found.append({"replace": {k: "".join(v) for k, v in change["replace"].items()},
                          "append": ["".join(c) for c in change["append"]]})
    return found


def changed(nb, change: dict):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))  # a copy
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in change.get("replace", {}):
            cell.source = change["replace"][grade_id]
    for source in change.get("append", []):
        cell = nbformat.v4.new_code_cell(source)
        if nb.nbformat_minor < 5:
            cell.pop("id", None)
        nb.cells.append(cell)
    return nb


def build_class(folder: str, students: int) -> dict[str, int]:
    """``folder``/submitted/<student>/ps02_attention/ps02_attention.ipynb; {kind: count}."""
    base, wrong = solved_notebook(), mutants()
    kinds = {"correct": [{}], "mutant": wrong, "crashing": CRASHING, "timing_out": TIMING_OUT, "hostile": HOSTILE}
    used = {kind: 0 for kind in kinds}
    for i in range(students):
        kind = MIX[i % len(MIX)]
        variants = kinds[kind]
        nb = changed(base, variants[used[kind] % len(variants)])
        used[kind] += 1
        target = os.path.join(folder, "submitted", f"student{i:04d}", ASSIGNMENT)
        os.makedirs(target)
        nbformat.write(nb, os.path.join(target, ASSIGNMENT + ".ipynb"))
    return {kind: n for kind, n in used.items() if n}


def command(*args) -> list[str]:
    return [sys.executable, "-m", "autograder", *map(str, args)]


def run_all(commands: list[list[str]], cwd: str) -> float:
    """Run these commands at once; the wall time until the last one ends."""
    env = dict(os.environ, PYTHONPATH=ROOT)  # the grader of this checkout, whatever the venv has installed
    start = time.perf_counter()
    procs = [subprocess.Popen(c, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for c in commands]
    for c, proc in zip(commands, procs):
        _, err = proc.communicate()
        if proc.returncode not in (0, 1):  # 1: internal errors (a worker that could not boot in time); reported below
            raise SystemExit(f"{' '.join(c)} failed ({proc.returncode}):\n{err[-3000:]}")
    return time.perf_counter() - start


def grade_seconds(courses: list[str]) -> list[float]:
    seconds = []
    for course in courses:
        for path in glob.glob(os.path.join(course, ".autograder", ASSIGNMENT, "*.json")):
            with open(path) as handle:
                seconds.append(json.load(handle)["result"]["seconds"])
    return seconds


def internal_errors(course: str) -> int:
    count = 0
    for path in glob.glob(os.path.join(course, ".autograder", ASSIGNMENT, "*.json")):
        with open(path) as handle:
            count += json.load(handle)["key"] == ""
    return count


def measure(config: str, work: str, students: int, timeout: float) -> dict:
    grade = ["grade", "--assignment", ASSIGNMENT, "--submitted", os.path.join(work, "submitted"), "-q",
             "--timeout", timeout]
    out = os.path.join(work, config)
    load = os.getloadavg()[0]
    if config.startswith("jobs"):
        runs = [[command(*grade, "--jobs", config[len("jobs"):], "--course", out)]]
        graded = [out]
    elif config == "shards2":
        graded = [os.path.join(out, f"shard-{k}") for k in range(2)]
        runs = [[command(*grade, "--jobs", 1, "--shard", f"{k}/2", "--course", graded[k]) for k in range(2)],
                [command("merge", *graded, "--assignment", ASSIGNMENT, "--course", out, "-q")]]
    elif config == "dask2":
        runs = [[command(*grade, "--dask", "local:2", "--course", out)]]
        graded = [out]
    else:
        raise SystemExit(f"unknown configuration {config!r}; known: {', '.join(CONFIGS)}")
    wall = sum(run_all(commands, work) for commands in runs)
    floor = sum(run_all(commands, work) for commands in runs)  # again: everything is cached now
    seconds = sorted(grade_seconds(graded))
    with open(os.path.join(out, f"grades_{ASSIGNMENT}.csv"), "rb") as handle:
        csv_bytes = handle.read()
    return {
        "config": config, "students": students, "wall_s": round(wall, 2),
        "submissions_per_s": round(students / wall, 3),
        "per_submission_median_s": round(statistics.median(seconds), 3),
        "per_submission_p95_s": round(seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))], 3),
        "floor_s": round(floor, 2), "internal_errors": internal_errors(out), "load_average_1min_before": round(load, 2),
        "_csv": csv_bytes,
    }


def markdown(result: dict) -> str:
    rows = ["| configuration | submissions/s | per submission, median (s) | p95 (s) | floor (s) |", "|---|---|---|---|---|"]
    for r in result["results"]:
        rows.append(f"| `{r['config']}` | {r['submissions_per_s']:g} | {r['per_submission_median_s']:g} | "
                    f"{r['per_submission_p95_s']:g} | {r['floor_s']:g} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of: {', '.join(CONFIGS)}")
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="seconds for a notebook to run and for each call (the timing-out submissions cost this)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "grading_scale.json"))
    parser.add_argument("--markdown", action="store_true", help="also print the table for the book")
    args = parser.parse_args()
    configs = [c for c in args.configs.split(",") if c]
    if args.students < 1:
        parser.error("--students must be at least 1")
    work = tempfile.mkdtemp(prefix="bench-scale-")
    try:
        mix = build_class(work, args.students)
        results = [measure(config, work, args.students, args.timeout) for config in configs]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    same_csv = len({r.pop("_csv") for r in results}) == 1
    result = {
        "assignment": ASSIGNMENT, "students": args.students, "mix": mix, "timeout_s": args.timeout,
        "cpu_count": os.cpu_count(), "machine": platform.platform(), "python": platform.python_version(),
        "results": results, "same_csv": same_csv,
        "note": "wall_s: one configuration grading the whole class from scratch (process start-up, collection, "
                "grading, gradebook, CSV; for shards2 the two shards at once, then merge); per_submission: "
                "GradeResult.seconds (a worker's start to its kill); floor_s: the same commands again with nothing "
                "to grade; a shared or loaded machine makes all of these noisy",
        "command": f"python benchmarks/grading_scale.py --students {args.students} --configs {','.join(configs)} "
                   f"--timeout {args.timeout:g}",
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
        handle.write("\n")
    print(json.dumps(result, indent=1))
    if args.markdown:
        print(markdown(result))
    if not same_csv:
        raise SystemExit("the configurations wrote different CSVs")


if __name__ == "__main__":
    main()
