"""Gradescope (autograder/grading/gradescope.py): the zip, its setup.sh, and runs in a mimicked container.

The zip is unpacked into ``<tmp>/autograder/source`` as Gradescope does; ``run_autograder`` runs with
that root and the zip's own copy of the course on the path, on the solution (full marks), the release
(zero) and two mutants; each results.json is validated against Gradescope's documented schema and its
scores against our CLI's grading of the same notebook. ``setup.sh`` passes shellcheck (Debian's
package, installed as root) and a dry run prints the installs it would make.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from _checks_mutants import mutant_notebook, mutants_of
from _grading import release_notebook, solved_notebook, write
from autograder import checks
from autograder.grading.gradescope import build
from system import find_or_install  # tools/system.py

ASSIGNMENT = "ps02_attention"
MUTANTS = ("inverted_mask", "float32_inside")
# Gradescope, "Autograder Specifications", output format of results.json (the fields we write).
SCHEMA = {
    "type": "object",
    "required": ["tests"],
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "stdout_visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": {
            "type": "object", "required": ["score", "max_score", "name"],
            "properties": {
                "score": {"type": "number"}, "max_score": {"type": "number"}, "name": {"type": "string"},
                "number": {"type": "string"}, "output": {"type": "string"},
                "status": {"enum": ["passed", "failed"]},
                "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
            }, "additionalProperties": False}},
    },
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def container(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gradescope") / "autograder"
    zip_path = build(ASSIGNMENT, str(root.parent / "autograder.zip"))
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        archive.extractall(root / "source")
        for info in archive.infolist():  # zipfile drops the mode bits: restore them, as unzip does
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777)
    assert {"setup.sh", "run_autograder", "requirements-grader.txt", "autograder/checks/test_ps02_attention.py",
            "attnlab/attention.py", "pyproject.toml"} <= set(names)
    assert build(ASSIGNMENT, str(root.parent / "again.zip")) and \
        (root.parent / "again.zip").read_bytes() == Path(zip_path).read_bytes(), "the zip's bytes are reproducible"
    return root


def run_in(container: Path, notebook) -> dict:
    submission = container / "submission"
    if submission.exists():
        for path in submission.iterdir():
            path.unlink()
    write(notebook, submission / f"{ASSIGNMENT}.ipynb")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(AUTOGRADER_ROOT=str(container), AUTOGRADER_PYTHON=sys.executable,
               PYTHONPATH=str(container / "source"))  # the zip's copy of the course, not the checkout's
    done = subprocess.run([str(container / "source" / "run_autograder")], env=env, capture_output=True, text=True,
                          cwd=container)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((container / "results" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    return results


@pytest.mark.slow
@pytest.mark.parametrize("which", ["solution", "release", *MUTANTS])
def test_run_autograder_scores_as_the_cli_does(container, which):
    """The CLI's scores of these notebooks are known: full, zero, and for a mutant every check but the
    ones its header declares (tests/test_checks_mutants.py proves the CLI's grading gives exactly that)."""
    points = checks.load(ASSIGNMENT).POINTS
    if which == "solution":
        notebook, failing = solved_notebook(ASSIGNMENT), set()
    elif which == "release":
        notebook, failing = release_notebook(ASSIGNMENT), set(points)
    else:
        mutant = mutants_of(ASSIGNMENT)[which]
        notebook, failing = mutant_notebook(ASSIGNMENT, mutant)[0], set(mutant.fails)
    results = run_in(container, notebook)
    expected = {name: (0 if name in failing else p) for name, p in points.items()}
    assert {t["name"]: t["score"] for t in results["tests"]} == expected
    assert results["score"] == sum(expected.values())
    assert {t["name"]: t["max_score"] for t in results["tests"]} == points
    assert all(t["status"] == ("failed" if t["name"] in failing else "passed") for t in results["tests"])
    for test in results["tests"]:
        assert "HIDDEN TESTS" not in test["output"] and "run_check" not in test["output"]


def test_setup_sh_passes_shellcheck_and_its_dry_run_installs_cpu_torch(container):
    setup = container / "source" / "setup.sh"
    assert os.access(setup, os.X_OK) and os.access(container / "source" / "run_autograder", os.X_OK)
    shellcheck, reason = find_or_install(("shellcheck",), "shellcheck")
    if shellcheck is None:
        pytest.skip(reason)
    for script in (setup, container / "source" / "run_autograder"):
        lint = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout
    dry = subprocess.run(["bash", str(setup)], env={**os.environ, "DRY_RUN": "1", "AUTOGRADER_ROOT": str(container)},
                         capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert any("-m venv" in line for line in lines)
    assert any("--index-url https://download.pytorch.org/whl/cpu torch==" in line for line in lines)
    assert any("requirements-grader.txt" in line for line in lines) and any("--no-deps" in line for line in lines)
    assert not (container / "venv").exists(), "a dry run installs nothing"
