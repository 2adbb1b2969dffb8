"""The editions of the book side by side: every page links to the same page in the other editions.

The English edition is the site's root (``_build/html/``); every other edition is a folder of it
(``_build/html/zh/`` for ``zh_CN``, built by ``python tools/i18n.py build --lang zh_CN``). Sphinx's
``editions`` setting (``_config.yml``) lists them: language, the label a reader clicks (in its own
language) and its folder under the site's root. Each page gets

- a language switch at the start of the article header (the sphinx-book-theme bar above every page,
  ``article_header_start``): a link to ``<folder>/<page>.html`` in every other edition, relative, so it
  works from ``file://`` as well as on a web server or GitHub Pages;
- ``<link rel="alternate" hreflang=...>`` in its head, for search engines.

The current edition is the one whose language is Sphinx's ``language`` (``en`` by default). A page
name is the same in every edition (translation changes text, never the table of contents), so the
counterpart of ``book/ch04_multihead`` is ``book/ch04_multihead`` in each folder.

A Chinese edition's search. Sphinx's zh search cuts Chinese text into words with jieba (pinned in
requirements.txt; without it Sphinx indexes no Chinese word at all, Chinese writing no spaces between
them). jieba's dictionary does not know every term of the course (束搜索, beam search, would be cut
into 和束 / 搜索), so the terms of appendix B's glossary (its 中文 column, the one list both editions
use) are given to jieba as a user dictionary (Sphinx's ``html_search_options["dict"]``), written at
the start of the build into the doctree folder.

A translated edition's exercises. A page's link to an exercise notebook of the English release,
``exercises/<a>/<a>.ipynb`` (a MyST ``path:`` link: Sphinx's download role), offers the notebook of the
edition's own release instead, ``exercises_<folder>/<a>/<a>.ipynb`` (``exercises_zh/`` for zh_CN), where
it exists: the same cells and checks, with the prose in the reader's language.

Our own because neither Sphinx, sphinx-intl nor sphinx-book-theme has a language switch for editions
that are separate builds (Read the Docs adds one on its own hosting only); this is a template and
three event handlers.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.errors import ConfigError

TEMPLATE = "edition-switch.html"
TEMPLATES = Path(__file__).parent / "templates"
DEFAULT = [{"language": "en", "label": "English", "folder": ""}]
# The header's start (the sidebar toggle, then the switch) in one row; the switch is not printed (make pdf).
STYLE = """
<style>
  .header-article-items__start { display: flex; align-items: center; }
  .edition-switch .edition-switch-link { font-size: 0.95rem; white-space: nowrap; }
  .edition-switch .edition-switch-link i { margin-right: 0.3em; }
  @media print { .edition-switch { display: none; } }
</style>"""


def hreflang(language: str) -> str:
    """The HTML form of a Sphinx language code: zh_CN -> zh-CN."""
    return language.replace("_", "-")


def editions(config) -> list[dict]:
    """The configured editions, checked: each has a language, a label and a folder ("" for the root)."""
    found = config.editions or DEFAULT
    for edition in found:
        if not isinstance(edition, dict) or not {"language", "label", "folder"} <= set(edition):
            raise ConfigError(f"editions: each entry needs language, label and folder; got {edition!r}")
    if len({e["language"] for e in found}) != len(found) or len({e["folder"] for e in found}) != len(found):
        raise ConfigError(f"editions: a language or folder appears twice: {found!r}")
    return found


def current(config) -> dict:
    """The edition this build makes: the one of Sphinx's ``language``."""
    language = config.language or "en"
    for edition in editions(config):
        if edition["language"] == language:
            return edition
    raise ConfigError(f"language {language!r} is not one of the editions in _config.yml "
                      f"({[e['language'] for e in editions(config)]}): add it to sphinx.config.editions")


def counterpart(pagename: str, here: dict, there: dict) -> str:
    """The relative address of ``pagename`` of edition ``there``, from the same page of edition ``here``."""
    source = posixpath.join(here["folder"], pagename + ".html")
    target = posixpath.join(there["folder"], pagename + ".html")
    return posixpath.relpath(target, posixpath.dirname(source) or ".")


GLOSSARY = Path(__file__).resolve().parents[1] / "appB_glossary.md"
CJK_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]{2,}")


def glossary_rows(glossary: Path = GLOSSARY) -> list[list[str]]:
    """The rows of appendix B's glossary table, each a list of its cells (English, 中文, Meaning, Chapter,
    wrong terms), header and separator left out: the one reader of the table (the search's dictionary
    here, the translation tests' term checks)."""
    text = glossary.read_text(encoding="utf-8")
    start = text.find("## Glossary")
    if start < 0:
        raise ConfigError(f"{glossary} has no '## Glossary' section: the Chinese search's terms come from it")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break  # the end of the table
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return [row for row in rows[2:] if len(row) > 1]  # [0] is the header, [1] the |---| line


def glossary_terms(glossary: Path = GLOSSARY) -> list[str]:
    """The Chinese terms of the glossary's table (its second column), each run of Chinese characters of a
    cell one term: "注意力分数（注意力评分）" gives 注意力分数 and 注意力评分."""
    return list(dict.fromkeys(term for row in glossary_rows(glossary) for term in CJK_WORD.findall(row[1])))


def search_dictionary(app: Sphinx, config) -> None:
    """A Chinese edition's search cuts text with the glossary's terms as words (jieba's user dictionary)."""
    if not (config.language or "").startswith("zh") or "dict" in (config.html_search_options or {}):
        return
    terms = glossary_terms()
    if not terms:
        raise ConfigError(f"no Chinese term in the glossary table of {GLOSSARY}")
    path = Path(app.doctreedir) / "search_words.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{term}\n" for term in terms), encoding="utf-8")
    config.html_search_options = {**(config.html_search_options or {}), "dict": str(path)}


def add_switch(app: Sphinx, config) -> None:
    """Put the switch's template on the template path and at the start of the article header."""
    current(config)  # an unknown language fails the build at once
    if str(TEMPLATES) not in config.templates_path:
        config.templates_path.append(str(TEMPLATES))
    options = config.html_theme_options
    start = options.get("article_header_start", ["toggle-primary-sidebar.html"])
    if isinstance(start, str):
        start = [item.strip() for item in start.split(",") if item.strip()]
    if TEMPLATE not in start:
        options["article_header_start"] = [*start, TEMPLATE]


def page_links(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """``context["editions"]``: for every other edition, its label, language and the page's address."""
    if app.builder.format != "html":
        return
    here = current(app.config)
    others = [{"label": e["label"], "lang": hreflang(e["language"]), "href": counterpart(pagename, here, e)}
              for e in editions(app.config) if e is not here]
    context["editions"] = others
    context["metatags"] = context.get("metatags", "") + "".join(
        f'\n<link rel="alternate" hreflang="{e["lang"]}" href="{e["href"]}" />' for e in others) + STYLE


EXERCISE = re.compile(r"(^|/)exercises/(ps\w+)/\2\.ipynb$")


class ExercisesOfTheEdition(SphinxTransform):
    """In a translated edition, a download link to an English exercise notebook points at its translation."""

    default_priority = 810  # after course_solutions (800: a withheld link is gone), before the download collector

    def apply(self, **kwargs) -> None:
        language = self.config.language or "en"
        folder = next((e["folder"] for e in editions(self.config) if e["language"] == language), "")
        if not folder:
            return
        here = Path(self.env.doc2path(self.env.docname)).parent
        for node in self.document.findall(addnodes.download_reference):
            target = node.get("reftarget", "")
            translated = EXERCISE.sub(rf"\1exercises_{folder}/\2/\2.ipynb", target)
            if translated != target and (here / translated).is_file():
                node["reftarget"] = translated


def setup(app: Sphinx) -> dict:
    app.add_config_value("editions", DEFAULT, "html", types=[list])
    app.connect("config-inited", add_switch)
    app.connect("config-inited", search_dictionary)
    app.connect("html-page-context", page_links)
    app.add_transform(ExercisesOfTheEdition)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
