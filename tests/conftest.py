"""Fixtures shared by several test files.

``built_book``: ONE strict build of the book per test session (`jupyter-book build . -W -n --keep-going`,
the command of `make book`) into the default `_build/`, so that it shares the execution cache with
`make book`; a clean clone (CI) executes every chapter. Used by tests/test_book.py (the built HTML is
offline and strict), tests/test_browser.py (every page in a real browser) and tests/test_no_answers.py.

``built_book_without_solutions``: the same strict build of the edition for a class that is still
working (``course_solutions: false``, book/instructors.md section 10), from a temporary copy of
`_config.yml` with that one setting flipped, into `_build/no_solutions/_build/html`. It runs after
``built_book`` and reads the same execution cache (`_build/.jupyter_cache`), so no chapter is executed
twice: only Sphinx runs again. Used by tests/test_no_answers.py.

``built_zh_book``: the Chinese edition, ONE strict build per session after ``built_book`` (`python
tools/i18n.py build --lang zh_CN`, the second step of `make book`) into `_build/html/zh/`, the folder
that every English page's language switch points at; it reads the English build's execution cache,
so only Sphinx runs again. Used by tests/test_i18n.py and tests/test_browser.py (both editions).

``course_wheel``: ONE build of the distribution's wheel per session, installed into a fresh venv
that sees no checkout (tests/_venvs.py): ``(wheel, python)``. Used by tests/test_packaging.py and by
the learner's journey (tests/test_journeys.py), whose notebooks run in a kernel of that venv.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# tools/ holds scripts that tests drive too (the headless-Chromium driver, the book's PDF printer).
sys.path.insert(0, str(ROOT / "tools"))
HTML = ROOT / "_build" / "html"
CACHE = ROOT / "_build" / ".jupyter_cache"  # jupyter-cache's default place for the default build
NO_SOLUTIONS = ROOT / "_build" / "no_solutions"  # --path-output of the edition without solutions


def strict_build(*options: str) -> str:
    """Run `jupyter-book build . -W -n --keep-going OPTIONS` in the repository; fail on any warning."""
    # the console script `jupyter-book` of the running venv, called through its interpreter
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", ".", "-W", "-n", "--keep-going", *options]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"strict book build failed (exit {result.returncode}):\n{log[-8000:]}"
    assert "build succeeded" in log, f"no 'build succeeded' in the build log:\n{log[-4000:]}"
    assert "WARNING: " not in log, f"the strict build logged a Sphinx warning:\n{log[-4000:]}"
    return log


@pytest.fixture(scope="session")
def built_book() -> Path:
    strict_build()
    return HTML


@pytest.fixture(scope="session")
def built_zh_book(built_book) -> Path:
    from i18n import build

    return build("zh_CN")


def config_without_solutions(folder: Path) -> Path:
    """A copy of _config.yml in ``folder`` with ``course_solutions: false`` that builds from the default
    build's execution cache (``tools/i18n.book_config``, which the translated editions use too)."""
    from i18n import book_config

    return book_config(folder, "_config_no_solutions.yml", course_solutions=False)


@pytest.fixture(scope="session")
def built_book_without_solutions(built_book, tmp_path_factory) -> Path:
    config = config_without_solutions(tmp_path_factory.mktemp("config"))
    strict_build("--config", str(config), "--path-output", str(NO_SOLUTIONS))
    return NO_SOLUTIONS / "_build" / "html"


@pytest.fixture(scope="session")
def built_zh_book_without_solutions(built_zh_book, tmp_path_factory) -> Path:
    """The Chinese edition with the same one setting, ``course_solutions: false``."""
    from i18n import build

    return build("zh_CN", out=tmp_path_factory.mktemp("zh_no_solutions") / "zh", course_solutions=False)


@pytest.fixture(scope="session")
def course_wheel(tmp_path_factory) -> tuple[Path, Path]:
    from _venvs import build_wheel, fresh_venv, pip_install

    folder = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(folder)
    python = fresh_venv(folder / "venv")
    pip_install(python, str(wheel), cwd=folder)
    return wheel, python
