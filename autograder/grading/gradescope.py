"""Gradescope: the autograder zip for one assignment, and what runs inside Gradescope's container.

    python -m autograder.grading.gradescope build --assignment ps02_attention [--out ps02_attention_gradescope.zip]
    python -m autograder.grading.gradescope run --assignment ps02_attention [--root /autograder]

**The zip** (Gradescope: *Autograder Specifications*, "Files required") holds ``setup.sh``,
``run_autograder`` and the course source (``attnlab``, ``autograder`` with the checks, the
distribution's ``pyproject.toml`` and ``requirements-grader.txt``, the pins of ``requirements.txt``
that grading needs). Gradescope unpacks it into ``/autograder/source`` and runs ``setup.sh`` once,
as root, when the instructor uploads it, then ``run_autograder`` for every submission.

**The image.** Choose Gradescope's *Ubuntu 24.04* base image: its Python 3.12 meets the course's
``requires-python >= 3.11``. On the older 22.04 image (Python 3.10) ``setup.sh`` installs Python
3.11 from the deadsnakes archive first. ``setup.sh`` makes a venv in ``/autograder/venv``, installs
the CPU build of the pinned torch from PyTorch's CPU index (the default wheel would bring several GB
of CUDA libraries the container never uses), the grading pins, and the course with ``--no-deps``.
Set ``DRY_RUN=1`` to print the commands instead of running them.

**A run** grades ``/autograder/submission/`` with the same checks and the same sandbox as
``python -m autograder grade``: the sandbox mode is the best the container allows (Gradescope's
containers run as root; where they do not allow namespaces the mode falls back to ``none`` and
the output says so, to the course staff only). It writes ``/autograder/results/results.json`` in
Gradescope's schema: one test per check (``name`` = grade_id, ``score``, ``max_score``, ``status``,
``output`` = the same plain-words message as our feedback, which never holds hidden test code or
an expected answer), and the total. The folder layout is a parameter (``--root``), so a test can
mimic the container in a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What grading needs of requirements.txt (no book, no tests, no training extras beyond the library's).
GRADING_PINS = ("numpy", "safetensors", "nbformat", "nbgrader", "sqlalchemy", "alembic", "nbconvert", "nbclient",
                "jupytext", "matplotlib", "babel", "tokenizers", "sacrebleu", "tqdm")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, in its container (see autograder/grading/gradescope.py).
# Base image: Ubuntu 24.04 (Python 3.12). On Ubuntu 22.04 it installs Python 3.11 from deadsnakes.
# DRY_RUN=1 prints the commands instead of running them.
set -euo pipefail

SOURCE="${{AUTOGRADER_ROOT:-/autograder}}/source"
VENV="${{AUTOGRADER_ROOT:-/autograder}}/venv"

run() {{
    if [ -n "${{DRY_RUN:-}}" ]; then
        echo "+ $*"
    else
        "$@"
    fi
}}

PYTHON=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    run apt-get update
    run apt-get install -y software-properties-common
    run add-apt-repository -y ppa:deadsnakes/ppa
    run apt-get update
    run apt-get install -y python3.11 python3.11-venv
    PYTHON=python3.11
else
    run apt-get update
    run apt-get install -y python3-venv
fi
run "$PYTHON" -m venv "$VENV"
run "$VENV/bin/pip" install --no-cache-dir --index-url {torch_index} "torch=={torch}"
run "$VENV/bin/pip" install --no-cache-dir -r "$SOURCE/requirements-grader.txt"
run "$VENV/bin/pip" install --no-cache-dir --no-deps "$SOURCE"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission (see autograder/grading/gradescope.py).
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
exec "${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}" -m autograder.grading.gradescope run --assignment {assignment} --root "$ROOT"
"""


def _pins() -> dict[str, str]:
    pins = {}
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)$", line.strip())
            if match:
                pins[match.group(1).lower()] = match.group(2)
    return pins


def _source_files() -> list[str]:
    """The course's packages as git tracks them (no caches, no local files), plus the distribution's files."""
    listing = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "attnlab", "autograder"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    files = [rel for rel in listing if os.path.isfile(os.path.join(ROOT, rel))]  # tracked, and new files not ignored
    return sorted(files) + ["pyproject.toml", "README.md", "LICENSE-CODE"]


def build(assignment: str, out: str) -> str:
    """Write the autograder zip for ``assignment`` to ``out``; return its path."""
    from autograder import checks

    checks.load(assignment)  # an unknown assignment fails here, with the list of known ones
    pins = _pins()
    requirements = "".join(f"{name}=={pins[name]}\n" for name in GRADING_PINS)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        def add(name: str, text: str, mode: int = 0o644) -> None:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # the same bytes every build
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)

        add("setup.sh", SETUP_SH.format(torch=pins["torch"], torch_index=TORCH_CPU_INDEX), 0o755)
        add("run_autograder", RUN_AUTOGRADER.format(assignment=assignment), 0o755)
        add("requirements-grader.txt", requirements)
        for rel in _source_files():
            with open(os.path.join(ROOT, rel), encoding="utf-8") as handle:
                add(rel, handle.read())
    return out


def results_json(result, mode: str, seconds: float) -> dict:
    """Gradescope's results.json for one GradeResult (schema: *Autograder Specifications*, "Output format")."""
    from attnlab.course.messages import _, render

    language = result.language  # the learner's (the notebook's metadata): messages are shown in it
    passed = render(_("passed"), language)
    tests = [{"name": t.name, "number": str(i), "score": t.points, "max_score": t.max_points,
              "status": "passed" if t.passed else "failed",
              "output": t.shown_message(language) or (passed if t.passed else ""), "visibility": "visible"}
             for i, t in enumerate(result.tests, start=1)]
    notes = [result.shown_fatal()] if result.fatal else []
    notes += [render(_("cell {cell}: {error}", cell=str(e.get("cell")), error=str(e.get("error"))), language)
              for e in result.notebook_errors[:20]]
    return {"score": result.score, "execution_time": round(seconds, 3), "output": "\n".join(notes),
            "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden", "tests": tests,
            "extra_data": {"sandbox": mode}}


def run(assignment: str, root: str) -> dict:
    """Grade ``<root>/submission`` and write ``<root>/results/results.json``; return the results."""
    from autograder import checks

    from .collect import find_notebook
    from .runner import GradeResult, TestResult, grade
    from .sandbox import mode_guarantees, sandbox_mode

    start = time.monotonic()
    points = checks.load(assignment).POINTS
    notebook, note = find_notebook(os.path.join(root, "submission"), assignment)
    mode = sandbox_mode()
    print(mode_guarantees(mode), file=sys.stderr)  # stdout and stderr are the staff's (stdout_visibility hidden)
    if notebook is None:
        result = GradeResult(assignment, "", fatal=note)
        result.tests = [TestResult(name, 0, p, False, note or "no notebook") for name, p in points.items()]
    else:
        result = grade(assignment, notebook, mode=mode)
        if note:
            result.fatal = note if not result.fatal else f"{note}; {result.fatal}"
            result.fatal_json = None  # the note is English: so is the whole
    results = results_json(result, mode, time.monotonic() - start)
    os.makedirs(os.path.join(root, "results"), exist_ok=True)
    with open(os.path.join(root, "results", "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.grading.gradescope", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the autograder zip to upload to Gradescope")
    b.add_argument("--assignment", required=True)
    b.add_argument("--out", help="the zip to write (default: <assignment>_gradescope.zip)")
    r = sub.add_parser("run", help="grade <root>/submission inside Gradescope's container")
    r.add_argument("--assignment", required=True)
    r.add_argument("--root", default="/autograder")
    args = parser.parse_args(argv)
    if args.command == "build":
        out = build(args.assignment, args.out or f"{args.assignment}_gradescope.zip")
        print(f"wrote {out}: upload it as the assignment's autograder (base image: Ubuntu 24.04)", file=sys.stderr)
    else:
        run(args.assignment, args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
