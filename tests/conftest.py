"""Fixtures shared by several test files.

``built_book``: ONE strict build of the book per test session (`jupyter-book build . -W -n --keep-going`,
the command of `make book`) into the default `_build/`, so that it shares the execution cache with
`make book`; a clean clone (CI) executes every chapter. Used by tests/test_book.py (the built HTML is
offline and strict) and tests/test_browser.py (every page in a real browser).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"


@pytest.fixture(scope="session")
def built_book() -> Path:
    # the console script `jupyter-book` of the running venv, called through its interpreter
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", ".", "-W", "-n", "--keep-going"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"strict book build failed (exit {result.returncode}):\n{log[-8000:]}"
    assert "build succeeded" in log, f"no 'build succeeded' in the build log:\n{log[-4000:]}"
    assert "WARNING: " not in log, f"the strict build logged a Sphinx warning:\n{log[-4000:]}"
    return HTML
