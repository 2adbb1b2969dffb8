"""The tree reads as one pipeline: each package imports only what stands below it.

library ``attnlab`` <- ``attnlab.train`` <- ``attnlab.course`` <- ``autograder.checks`` <- ``autograder.grading``.
The contracts live in pyproject.toml (``[tool.importlinter]``) and are checked with import-linter
(pinned); these tests run it, show that it catches an upward import, and keep its list of library
modules complete, so a new module cannot slip past the rule that the library is the floor.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = [os.path.join(os.path.dirname(sys.executable), "lint-imports"), "--no-cache"]
FLOOR = "The library is the floor"


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    # import-linter puts the working directory first on sys.path: a copy there is what it reads.
    return subprocess.run(LINT, cwd=cwd, capture_output=True, text=True)


def test_import_contracts_are_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and f"{len(_contracts())} kept, 0 broken" in result.stdout, result.stdout


def test_every_library_module_is_held_to_the_floor_contract():
    floor = next(c for c in _contracts() if c["name"].startswith(FLOOR))
    modules = {f"attnlab.{p.stem}" for p in (ROOT / "attnlab").glob("*.py") if p.stem != "__init__"}
    listed = set(floor["source_modules"])
    assert modules == listed, (f"pyproject.toml, contract {FLOOR!r}: add {sorted(modules - listed)} to source_modules"
                               if modules - listed else f"remove {sorted(listed - modules)}: no such module")
    assert set(floor["forbidden_modules"]) == {"attnlab.train", "attnlab.course", "autograder"}


def test_an_upward_import_breaks_the_contracts(tmp_path):
    """The contracts can fail: the library importing a helper, and a check importing the grading code."""
    for package in ("attnlab", "autograder"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "attnlab" / "attention.py", "a") as handle:
        handle.write("\nimport attnlab.course.bugs  # noqa: E402 - an upward import, on purpose\n")
    with open(tmp_path / "autograder" / "checks" / "expect.py", "a") as handle:
        handle.write("\nimport autograder.grading.runner  # noqa: E402 - an upward import, on purpose\n")
    result = _lint(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "attnlab.attention is not allowed to import attnlab.course" in result.stdout, result.stdout
    assert "autograder.checks is not allowed to import autograder.grading" in result.stdout, result.stdout


def test_book_execution_cache_key_covers_every_package_the_chapters_import():
    """The book workflow restores executed chapters by a key; a change to code they import must change it."""
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    patterns = set(re.findall(r"'([^']+)'", " ".join(re.findall(r"hashFiles\(([^)]*)\)", workflow))))
    assert patterns, "book.yml: no hashFiles(...) in the cache key"
    imported = set()
    for chapter in (ROOT / "book").glob("*.md"):
        imported |= set(re.findall(r"^\s*(?:from|import)\s+(\w+)", chapter.read_text(encoding="utf-8"), re.M))
    ours = {name for name in imported if (ROOT / name / "__init__.py").is_file()}
    assert ours, "the chapters import no package of this repository?"
    for package in ours:
        assert f"{package}/**/*.py" in patterns, f"book.yml: the cache key misses {package}/**/*.py"
    assert "requirements.txt" in patterns
