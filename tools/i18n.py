"""Translations of the course from one source: Sphinx's gettext workflow for the book, catalogues for the exercises and the learner-facing messages.

    python tools/i18n.py extract                 # _build/i18n/pot/*.pot: every heading, paragraph, table cell
    python tools/i18n.py update --lang zh_CN     # locales/zh_CN/LC_MESSAGES/book/*.po (sphinx-intl)
    python tools/i18n.py build --lang zh_CN      # _build/html/zh/: the edition in that language
    python tools/i18n.py exercises --lang zh_CN  # locales/zh_CN/LC_MESSAGES/exercises/<a>.po: the notebooks' prose
    python tools/i18n.py messages --lang zh_CN   # learner-facing messages: messages.po -> attnlab/course/locale/zh_CN.json

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
    # myst-nb gives the gettext builder no image of an output, so a figure's alt text would not reach the
    # catalogue; with images first, it does (and the edition's Locale transform translates it)
    config = book_config(WORK, "_config_gettext.yml", gettext_compact=False,
                         nb_mime_priority_overrides=[["gettext", "image/svg+xml", 1], ["gettext", "image/png", 2],
                                                     ["gettext", "image/jpeg", 3]])
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


def editions_config() -> list[dict]:
    """_config.yml's ``sphinx.config.editions``: language, label, folder (and title) of each edition."""
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["config"]["editions"]


def edition_folders() -> list[str]:
    """The folders of the translated editions inside the English site (zh)."""
    return [e["folder"] for e in editions_config() if e["folder"]]


def build(lang: str, locales: Path = LOCALES, out: Path | None = None, strict: bool = True, **sphinx_config) -> Path:
    """The edition in ``lang`` (e.g. zh_CN), by default into its folder of the English site, the one that
    ``_config.yml``'s ``editions`` names (zh_CN: _build/html/zh/), where every page's language switch
    (book/_ext/editions.py) points."""
    if out is None:
        editions = editions_config()
        folder = next((e["folder"] for e in editions if e["language"] == lang), None)
        if not folder:
            raise SystemExit(f"{lang} is not a translated edition in _config.yml's sphinx.config.editions "
                             f"({', '.join(e['language'] for e in editions)})")
        out = ROOT / "_build" / "html" / folder
    # Sphinx compiles a catalogue (.po -> .mo) only when the .po is newer: a .mo written in the same second
    # as an older .po (a checkout, a script) would be kept, stale. The .mo files are build products
    # (git ignores them): compile every one afresh (well under a second).
    for mo in (locales / lang).rglob("*.mo"):
        mo.unlink()
    title = next((e.get("title") for e in editions_config() if e["language"] == lang), None)
    config = book_config(WORK, f"_config_{lang}.yml", language=lang, locale_dirs=[str(locales.resolve())],
                         **({"html_title": title} if title else {}), **sphinx_config,
                         gettext_compact=False)
    work = WORK / "_".join([f"html_{lang}", *sorted(sphinx_config)])  # e.g. html_zh_CN_course_solutions
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


# ------------------------------------------------------------------------------ learner-facing messages
# Every ``_("template", ...)`` of attnlab/ and autograder/ (self-checks, the grader's checks, the
# feedback page; attnlab.course.messages), extracted with babel's Python extractor, into
# locales/<lang>/LC_MESSAGES/messages.po, and the translated entries into the JSON catalogue the course
# library reads (attnlab/course/locale/<lang>.json, shipped in its wheel). Babel does the extraction and
# reads and writes the .po; the update is our own few lines because babel's ``Catalog.update`` marks
# near matches fuzzy, and this catalogue has none: a changed template is a new, empty entry.
MESSAGE_SOURCES = ("attnlab", "autograder", "book/_ext")  # book/_ext: the words the book's extensions write
MESSAGE_LOCALE = ROOT / "attnlab" / "course" / "locale"


def message_templates(root: Path = ROOT) -> dict[str, list[str]]:
    """Template -> the files that use it (relative paths), for every ``_()`` with a constant first argument."""
    from babel.messages.extract import extract_from_file

    found: dict[str, set[str]] = {}
    for package in MESSAGE_SOURCES:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            for _lineno, message, _comments, _context in extract_from_file("python", path, keywords={"_": None, "N_": None}):
                if isinstance(message, str) and message:
                    found.setdefault(message, set()).add(path.relative_to(root).as_posix())
    return {template: sorted(files) for template, files in sorted(found.items())}


def messages_po(lang: str, locales: Path = LOCALES) -> Path:
    return locales / lang / "LC_MESSAGES" / "messages.po"


def update_messages(lang: str, root: Path = ROOT, locales: Path = LOCALES, out: Path = MESSAGE_LOCALE) -> tuple[int, int]:
    """messages.po brought up to the code (translations kept, stale entries dropped, nothing fuzzy) and
    its translated entries written to ``out/<lang>.json``; returns (messages, translated)."""
    import datetime
    import json

    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    po = messages_po(lang, locales)
    old = {}
    if po.is_file():
        with po.open("rb") as handle:
            old = {m.id: m.string for m in read_po(handle) if m.id and m.string and not m.fuzzy}
    fixed = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)  # stable bytes: no dates that move
    catalog = Catalog(locale=lang, project="attnlab course messages", version="1", creation_date=fixed,
                      revision_date=fixed, fuzzy=False, language_team=f"{lang}: the course's translators", copyright_holder="the course's authors",
                      last_translator="the course's translators")
    templates = message_templates(root)
    for template, files in templates.items():
        catalog.add(template, old.get(template, ""), locations=[(f, None) for f in files])
    po.parent.mkdir(parents=True, exist_ok=True)
    with po.open("wb") as handle:
        write_po(handle, catalog, width=100, sort_output=True, include_lineno=False, omit_header=False)
    translated = {template: old[template] for template in templates if old.get(template)}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{lang}.json").write_text(json.dumps(translated, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                      encoding="utf-8")
    return len(templates), len(translated)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/i18n.py", description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("extract", "update", "build", "exercises", "messages"))
    parser.add_argument("--lang", default="zh_CN", help="a Sphinx language code (default zh_CN)")
    args = parser.parse_args(argv)
    if args.step == "exercises":  # the notebooks' prose: no book build involved
        return exercises(args.lang)
    if args.step == "messages":  # no book involved
        total, translated = update_messages(args.lang)
        print(f"{messages_po(args.lang).relative_to(ROOT)}: {total} messages, {translated} translated; "
              f"{(MESSAGE_LOCALE / f'{args.lang}.json').relative_to(ROOT)} written")
        return
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
