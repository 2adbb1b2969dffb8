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

Our own because neither Sphinx, sphinx-intl nor sphinx-book-theme has a language switch for editions
that are separate builds (Read the Docs adds one on its own hosting only); this is a template and
one event handler.
"""
from __future__ import annotations

import posixpath
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ConfigError

TEMPLATE = "edition-switch.html"
TEMPLATES = Path(__file__).parent / "templates"
DEFAULT = [{"language": "en", "label": "English", "folder": ""}]
# The header's start (the sidebar toggle, then the switch) in one row; the switch is not printed (make pdf).
STYLE = """
<style>
  .header-article-items__start { display: flex; align-items: center; }
  .edition-switch .edition-switch-link { font-size: 0.95rem; white-space: nowrap; }
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


def setup(app: Sphinx) -> dict:
    app.add_config_value("editions", DEFAULT, "html", types=[list])
    app.connect("config-inited", add_switch)
    app.connect("html-page-context", page_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
