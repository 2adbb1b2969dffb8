"""The distribution installs every package: from a built wheel, with ``pip install .`` from a clone, and
from a repository address pinned to a tag (``pip install "git+<address>@<tag>"``, here a ``git+file://``
address of a local clone), the way a Colab setup cell or a teacher's machine installs the course.
Nothing installs by a bare package name: nobody publishes ours, and a squatter's would run for everyone.

Each install goes into a fresh virtual environment that sees no checkout: its interpreter runs from
a temporary folder, and the dependencies come from this test's own environment through a ``.pth``
line (a plain path: the editable install of the checkout that lives there is not activated by it).
Both installs must give ``import attnlab`` (library, training code, helpers) and ``python -m autograder``.
"""
from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from _venvs import fresh_venv, pip_install, source_copy

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("attnlab", "autograder")

PROBE = """
import os, sys
import attnlab, attnlab.objectives, attnlab.train.loop, attnlab.course.selfcheck, autograder.checks, autograder.grading.cli
checkout = sys.argv[1]
for module in (attnlab, autograder):
    assert not os.path.realpath(module.__file__).startswith(checkout + os.sep), module.__file__
    assert "site-packages" in module.__file__, module.__file__
model = attnlab.Transformer(attnlab.TransformerConfig(src_vocab_size=11, tgt_vocab_size=11, d_model=8, num_heads=2,
                                                      num_encoder_layers=1, num_decoder_layers=1, d_ff=16))
print("ok", sorted(autograder.checks.assignments())[0], type(model).__name__)
"""


def _assert_works(python: Path, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    probe = subprocess.run([str(python), "-c", PROBE, str(ROOT)], cwd=cwd, capture_output=True, text=True, env=env)
    assert probe.returncode == 0 and probe.stdout.startswith("ok ps01"), probe.stdout + probe.stderr
    cli = subprocess.run([str(python), "-m", "autograder", "grade", "--help"], cwd=cwd, capture_output=True,
                         text=True, env=env)
    assert cli.returncode == 0 and "--assignment" in cli.stdout, cli.stdout + cli.stderr
    train = subprocess.run([str(python), "-m", "attnlab.train", "--help"], cwd=cwd, capture_output=True,
                           text=True, env=env)
    assert train.returncode == 0 and "--task" in train.stdout, train.stdout + train.stderr


@pytest.mark.slow
def test_wheel_holds_every_module_and_works_in_afresh_venv(course_wheel, tmp_path):
    wheel, python = course_wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                if "__pycache__" not in p.parts}
    assert not expected - names, f"modules missing from the wheel: {sorted(expected - names)}"
    assert "autograder/checks/README.md" in names
    assert "attnlab/course/locale/zh_CN.json" in names, "the messages' catalogue must ship (pyproject package-data)"
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Dist: torch" in metadata and "Requires-Dist: nbgrader" in metadata, metadata
    assert "License-Expression: MIT" in metadata and any(n.endswith("licenses/LICENSE-CODE") for n in names)
    _assert_works(python, cwd=tmp_path)


@pytest.mark.slow
def test_pip_install_from_a_clone_works_in_afresh_venv(tmp_path):
    src = source_copy(tmp_path)
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, ".", cwd=src)
    _assert_works(python, cwd=tmp_path)


# ----------------------------------------------------------------------------------------------
# The exercise notebooks' setup cell (attnlab.course.release.SETUP_SOURCE), outside the repository.

def _setup_cell(address: str) -> str:
    from attnlab.course.release import setup_cell

    return setup_cell(address).source


def _run_cell(python: Path, source: str, cwd: Path, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(env_extra)
    return subprocess.run([str(python), "-c", source], cwd=cwd, capture_output=True, text=True, env=env)


def test_setup_cell_without_an_address_says_what_to_do(tmp_path):
    python = fresh_venv(tmp_path / "venv")  # the dependencies, not the course
    run = _run_cell(python, _setup_cell(""), cwd=tmp_path)
    assert run.returncode != 0
    message = run.stderr.strip().splitlines()[-1]
    assert message.startswith("RuntimeError: The course library `attnlab` is not installed here"), run.stderr
    assert "git+ADDRESS@TAG" in message and "pip install ." in message


@pytest.mark.slow
def test_setup_cell_installs_the_course_from_its_address_when_missing(tmp_path):
    """As on Colab: no course, an address pinned to a tag (here a local clone's git+file:// one, as
    ``pip install "git+https://github.com/<you>/<repo>@<tag>"`` without the network); the cell installs
    it, a second run finds it, and the installed course works. pip stays offline and builds in place."""
    clone = tmp_path / "course.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "--git-dir", str(clone), "tag", "v-test", "HEAD"], check=True)
    python = fresh_venv(tmp_path / "venv")
    source = _setup_cell(f"git+file://{clone}@v-test") + "\nimport attnlab; print(attnlab.__file__)\n"
    offline = {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    first = _run_cell(python, source, cwd=tmp_path, **offline)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "The course library is ready." in first.stdout and str(tmp_path / "venv") in first.stdout
    again = _run_cell(python, source, cwd=tmp_path, PIP_NO_INDEX="1")
    assert again.returncode == 0 and "The course library is ready." in again.stdout
    _assert_works(python, cwd=tmp_path)
