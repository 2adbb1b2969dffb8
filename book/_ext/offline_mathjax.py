"""Serve MathJax 3 from the book itself instead of a CDN.

The pinned PyPI package ``django-static-mathjax`` carries a full MathJax 3 build. At build
time this extension copies its ``es5/`` folder (the browser bundle and its fonts) into
``<html output>/mathjax/`` and points Sphinx's ``mathjax_path`` at it, so the built book renders
math with no network. Nothing is vendored into the repository: the files come from the venv.

``mathjax_path`` is resolved relative to ``_static/``, hence ``../mathjax/...``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

OUTPUT_DIR = "mathjax"  # under the HTML output root
ENTRY = "tex-mml-chtml.js"
# What the browser never needs: the other bundles stay in the venv.
SKIP = ("*-full*.js", "*-svg*.js", "mml-*.js", "node-main.js", "tex-chtml.js", "tex-svg.js")


def mathjax_source() -> Path:
    """The es5 folder of the installed MathJax 3 (raises a clear error when the package is missing)."""
    try:
        import mathjax  # provided by django-static-mathjax
    except ImportError as err:  # pragma: no cover - a broken environment
        raise RuntimeError(
            "offline MathJax needs the pinned package django-static-mathjax (see requirements.txt); "
            "run `make venv`"
        ) from err
    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (source / ENTRY).is_file():
        raise RuntimeError(f"MathJax entry point not found at {source / ENTRY}")
    return source


def set_path(app: Sphinx, config) -> None:
    config.mathjax_path = f"../{OUTPUT_DIR}/{ENTRY}"


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / OUTPUT_DIR
    shutil.copytree(mathjax_source(), target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*SKIP))
    logger.info(f"offline MathJax copied to {target}")


def setup(app: Sphinx) -> dict:
    mathjax_source()  # fail early, before any notebook runs
    # priority > 800 so that we run after jupyter-book has filled in its own configuration
    app.connect("config-inited", set_path, priority=900)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
