"""Keep the built book offline: no script, style or font is fetched from the network.

1. MathJax 3 ships with the book. The pinned PyPI package ``django-static-mathjax`` carries a full
   MathJax 3 build; at build time its ``es5/`` folder (the browser bundle, its components and fonts)
   is copied into ``<html output>/mathjax/`` and Sphinx's ``mathjax_path`` points at it. Nothing is
   vendored into the repository: the files come from the venv. ``mathjax_path`` is resolved relative
   to ``_static/``, hence ``../mathjax/...``.
   Every page loads it (the assets policy "always"), math or not.
2. Thebe (live code cells run on a remote Binder) is off in ``_config.yml``, but jupyter-book adds
   its loader to every page anyway, with the address of the thebe bundle on unpkg.com. While
   ``launch_buttons.thebe`` is false that loader is dead code, so it is dropped from the pages.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

OUTPUT_DIR = "mathjax"  # under the HTML output root
ENTRY = "tex-mml-chtml.js"
# Other bundles of the package that the browser never loads: they stay in the venv.
SKIP = ("*-full*.js", "*-svg*.js", "mml-*.js", "node-main.js", "tex-chtml.js", "tex-svg.js")


def mathjax_source() -> Path:
    """The es5 folder of the installed MathJax 3, with a clear error when it is missing."""
    try:
        import mathjax  # the import name of django-static-mathjax
    except ImportError as err:
        raise RuntimeError(
            "the offline book needs the pinned package django-static-mathjax (see requirements.txt); "
            "run `make venv`"
        ) from err
    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (source / ENTRY).is_file():
        raise RuntimeError(f"MathJax entry point not found at {source / ENTRY}; reinstall django-static-mathjax")
    return source


def set_mathjax_path(app: Sphinx, config) -> None:
    config.mathjax_path = f"../{OUTPUT_DIR}/{ENTRY}"


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / OUTPUT_DIR
    shutil.copytree(mathjax_source(), target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*SKIP))
    logger.info(f"offline MathJax copied to {target}")


def thebe_enabled(app: Sphinx) -> bool:
    options = app.config.html_theme_options or {}
    return bool((options.get("launch_buttons") or {}).get("thebe"))


def drop_thebe(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if thebe_enabled(app):
        return
    if "script_files" in context:
        context["script_files"] = [
            js for js in context["script_files"]
            if "sphinx-thebe" not in str(js) and "THEBE_JS_URL" not in js.attributes.get("body", "")
        ]
    if "css_files" in context:
        context["css_files"] = [css for css in context["css_files"] if "sphinx-thebe" not in str(css)]


def setup(app: Sphinx) -> dict:
    mathjax_source()  # fail early, before any notebook runs
    # late priority: run after jupyter-book has filled in its own configuration
    app.connect("config-inited", set_mathjax_path, priority=900)
    # Every page loads the local MathJax, also a page in which Sphinx sees no equation (appendix D,
    # the references): tests/test_book.py checks that each page of the book loads it.
    app.set_html_assets_policy("always")
    app.connect("html-page-context", drop_thebe)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
