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
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

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


def _source_copy(tmp_path: Path) -> Path:
    """The files git would put in a clone (tracked, and new files not ignored), copied: building
    in place would leave build/ and *.egg-info in the checkout."""
    listing = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split("\n")
    src = tmp_path / "src"
    for rel in filter(None, listing):
        if rel.startswith(("exercises/", "solutions/", "book/", "benchmarks/", "tests/")) or not (ROOT / rel).is_file():
            continue  # not part of the distribution; keeps the copy small
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    return src


def _fresh_venv(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "course_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _pip(python: Path, *args: str, cwd: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check",
                             "install", "--no-deps", "--no-build-isolation", "--no-index", *args],
                            cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


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
def test_wheel_holds_every_module_and_works_in_a_fresh_venv(tmp_path):
    src = _source_copy(tmp_path)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(dist), str(src)], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("attention_course-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                if "__pycache__" not in p.parts}
    assert not expected - names, f"modules missing from the wheel: {sorted(expected - names)}"
    assert "autograder/checks/README.md" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Dist: torch" in metadata and "Requires-Dist: nbgrader" in metadata, metadata
    assert "License-Expression: MIT" in metadata and any(n.endswith("licenses/LICENSE-CODE") for n in names)

    python = _fresh_venv(tmp_path / "venv")
    _pip(python, str(wheel), cwd=tmp_path)
    _assert_works(python, cwd=tmp_path)


@pytest.mark.slow
def test_pip_install_from_a_clone_works_in_a_fresh_venv(tmp_path):
    src = _source_copy(tmp_path)
    python = _fresh_venv(tmp_path / "venv")
    _pip(python, ".", cwd=src)
    _assert_works(python, cwd=tmp_path)


@pytest.mark.slow
def test_pip_install_from_a_git_address_pinned_to_a_tag(tmp_path):
    """A clone of the committed tree, tagged, installed by its ``git+file://`` address: what
    ``pip install "git+https://github.com/<you>/<repo>@<tag>"`` does, without the network."""
    clone = tmp_path / "course.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "--git-dir", str(clone), "tag", "v-test", "HEAD"], check=True)
    python = _fresh_venv(tmp_path / "venv")
    _pip(python, f"git+file://{clone}@v-test", cwd=tmp_path)
    _assert_works(python, cwd=tmp_path)
