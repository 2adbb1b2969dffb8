"""Translations of the book from one source: Sphinx's gettext workflow (issue 20, started).

    python tools/i18n.py extract                 # _build/i18n/pot/*.pot: every heading, paragraph, table cell
    python tools/i18n.py update --lang zh_CN     # locales/zh_CN/LC_MESSAGES/book/*.po (sphinx-intl)
    python tools/i18n.py build --lang zh_CN      # _build/html/zh/: the edition in that language
    python tools/i18n.py exercises --lang zh_CN  # locales/zh_CN/LC_MESSAGES/exercises/<a>.po: the notebooks' prose

Why a script of our own: jupyter-book 1's CLI builds one language and passes no ``-D language``. It
does take another configuration file, so each step here builds with a copy of ``_config.yml``
(``book_config``) that changes only Sphinx's settings: the ``gettext`` builder for the catalogues,
``language`` and ``locale_dirs`` for an edition. The catalogue tooling itself is sphinx-intl (pinned).
Every build reads the English build's execution cache, so an edition's code cells, outputs and figures
are the English ones by construction: nothing is executed twice, and ``make book`` must have run first.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"  # the English build's execution cache (jupyter-cache's default place)
LOCALES = ROOT / "locales"  # locales/<lang>/LC_MESSAGES/book/<page>.po, under version control
WORK = ROOT / "_build" / "i18n"


def book_config(folder: Path, name: str, **sphinx_config) -> Path:
    """A copy of _config.yml in ``folder`` that builds from the English execution cache, with the local
    extensions' folders made absolute (they are read relative to the configuration file) and
    ``sphinx_config`` added to Sphinx's settings."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["sphinx"].setdefault("config", {}).update(sphinx_config)
    config.setdefault("execute", {})["cache"] = str(CACHE)
    extensions = config["sphinx"].get("local_extensions") or {}
    config["sphinx"]["local_extensions"] = {key: str((ROOT / path).resolve()) for key, path in extensions.items()}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def jupyter_book(*arguments: str) -> str:
    """``jupyter-book ARGUMENTS`` in the repository with this interpreter's jupyter-book; the log, or an error."""
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", *arguments]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    log = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"jupyter-book {' '.join(arguments)} failed (exit {result.returncode}):\n{log[-6000:]}")
    return log


def extract(out: Path = WORK / "pot") -> Path:
    """One message template per page, ``out/book/<page>.pot``."""
    config = book_config(WORK, "_config_gettext.yml", gettext_compact=False)
    if (WORK / "gettext").exists():  # a fresh environment, as in build()
        shutil.rmtree(WORK / "gettext")
    jupyter_book("build", ".", "--builder", "custom", "--custom-builder", "gettext", "--config", str(config),
                 "--path-output", str(WORK / "gettext"))
    built = WORK / "gettext" / "_build" / "gettext"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(built, out)
    return out


def update(lang: str, pot: Path = WORK / "pot", locales: Path = LOCALES) -> None:
    """Bring ``locales/<lang>`` up to the templates: new messages empty, changed ones fuzzy (sphinx-intl)."""
    subprocess.run([sys.executable, "-m", "sphinx_intl", "update", "-p", str(pot), "-l", lang, "-d", str(locales)],
                   check=True, cwd=ROOT)


def build(lang: str, locales: Path = LOCALES, out: Path | None = None, strict: bool = True) -> Path:
    """The edition in ``lang`` (e.g. zh_CN), by default into its folder of the English site, the one that
    ``_config.yml``'s ``editions`` names (zh_CN: _build/html/zh/), where every page's language switch
    (book/_ext/editions.py) points."""
    if out is None:
        editions = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["config"]["editions"]
        folder = next((e["folder"] for e in editions if e["language"] == lang), None)
        if not folder:
            raise SystemExit(f"{lang} is not a translated edition in _config.yml's sphinx.config.editions "
                             f"({', '.join(e['language'] for e in editions)})")
        out = ROOT / "_build" / "html" / folder
    config = book_config(WORK, f"_config_{lang}.yml", language=lang, locale_dirs=[str(locales.resolve())],
                         gettext_compact=False)
    work = WORK / f"html_{lang}"
    if work.exists():  # a fresh environment: Sphinx does not reread a page when only an extension changed
        shutil.rmtree(work)
    jupyter_book("build", ".", *(("-W", "-n", "--keep-going") if strict else ()), "--config", str(config),
                 "--path-output", str(work))
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(work / "_build" / "html", out)
    return out


# --------------------------------------------------------------------------- exercise notebooks
def exercises(lang: str) -> None:
    """Extract the prose of every exercise's source notebook (built from ``solutions/<a>/<a>.md``) and
    update its catalogue ``locales/<lang>/LC_MESSAGES/exercises/<a>.po`` (attnlab.course.exercise_i18n; no book build needed).
    ``python -m attnlab.course.release`` then builds the translated release from them."""
    sys.path.insert(0, str(ROOT))
    import nbformat

    from attnlab.course import exercise_i18n, release

    notebooks = {}
    for name in release.assignments(str(ROOT)):
        md, ipynb = ROOT / "solutions" / name / f"{name}.md", ROOT / "solutions" / name / f"{name}.ipynb"
        # from the text source when there is one, so that `make exercises` need not run first
        text = release.build_source(str(md)) if md.is_file() else ipynb.read_text(encoding="utf-8")
        notebooks[name] = nbformat.reads(text, as_version=4)
    for path, messages, translated in exercise_i18n.update_all(lang, str(ROOT), notebooks):
        print(f"{Path(path).relative_to(ROOT)}: {messages} messages, {translated} translated")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/i18n.py", description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("extract", "update", "build", "exercises"))
    parser.add_argument("--lang", default="zh_CN", help="a Sphinx language code (default zh_CN)")
    args = parser.parse_args(argv)
    if args.step == "exercises":  # the notebooks' prose: no book build involved
        return exercises(args.lang)
    if not CACHE.is_dir():
        raise SystemExit("no execution cache in _build/.jupyter_cache: run `make book` first (the translated "
                         "editions reuse the English build's executed chapters)")
    if args.step == "extract":
        print(f"templates in {extract()}")
    elif args.step == "update":
        update(args.lang)
    else:
        print(f"the {args.lang} edition is in {build(args.lang)}")


if __name__ == "__main__":
    main()
