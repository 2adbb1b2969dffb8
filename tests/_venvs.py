"""Fresh virtual environments that see no checkout: the course installed as a learner installs it.

A fresh venv's interpreter runs from a temporary folder; the course's dependencies come from this
test run's own environment through a ``.pth`` line (a plain path: the editable install of the
checkout that lives there is not activated by it, since only a site folder's own ``.pth`` files
run). So ``import attnlab`` there finds only what was installed into the venv.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def source_copy(tmp_path: Path) -> Path:
    """The files git would put in a clone (tracked, and new files not ignored), copied: building
    in place would leave build/ and *.egg-info in the checkout."""
    listing = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split("\n")
    src = tmp_path / "src"
    for rel in filter(None, listing):
        if rel.startswith(("exercises/", "exercises_zh/", "solutions/", "book/", "benchmarks/", "tests/")) or not (ROOT / rel).is_file():
            continue  # not part of the distribution; keeps the copy small
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    return src


def fresh_venv(folder: Path, dependencies: bool = True) -> Path:
    """A new venv (no pip of its own); with ``dependencies``, this run's packages on its path."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    if dependencies:
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
        Path(site, "course_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def pip_install(python: Path, *args: str, cwd: Path) -> None:
    """Install into ``python``'s venv with this run's pip, offline, without build isolation."""
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check",
                             "install", "--no-deps", "--no-build-isolation", "--no-index", *args],
                            cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def build_wheel(tmp_path: Path) -> Path:
    """The distribution's wheel, built from a copy of what a clone holds."""
    src = source_copy(tmp_path)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(dist), str(src)], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("attention_course-*.whl")
    return wheel
