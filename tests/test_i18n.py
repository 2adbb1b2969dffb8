"""The translation workflow of ``tools/i18n.py`` (issue 20, started): Sphinx's gettext builder extracts
the executed MyST-NB chapters into one template per page, sphinx-intl keeps the catalogues, and a
strict build with ``language`` set (through a copy of _config.yml: jupyter-book's CLI passes no
``-D language``) puts a translated message into a page whose code is the English build's."""
from __future__ import annotations

import re

from babel.messages.pofile import read_po, write_po

import i18n
from conftest import HTML

PAGE = "book/ch04_multihead"
TITLE, TITLE_ZH = "Multi-head attention", "多头注意力"


def code_blocks(html: str) -> list[str]:
    return re.findall(r'<div class="highlight"><pre>(.*?)</pre>', html, flags=re.S)


def test_a_translated_message_reaches_its_edition_and_the_code_stays_english(built_book, tmp_path):
    pot = i18n.extract(tmp_path / "pot")
    with (pot / f"{PAGE}.pot").open("rb") as handle:
        template = read_po(handle)
    ids = [message.id for message in template if message.id]
    assert TITLE in ids, f"{PAGE}.pot lacks the page's title; it holds {ids[:5]} ..."
    assert any(m.startswith("A single attention head gives every query") for m in ids), \
        "a paragraph of prose (with math and a citation) should be one message"
    assert not any("import torch" in m for m in ids), "code cells are not for translators"

    locales = tmp_path / "locales"
    i18n.update("zh_CN", pot, locales)
    po = locales / "zh_CN" / "LC_MESSAGES" / f"{PAGE}.po"
    with po.open("rb") as handle:
        catalogue = read_po(handle)
    assert all(not message.string for message in catalogue if message.id), "a new catalogue starts untranslated"
    catalogue[TITLE].string = TITLE_ZH
    with po.open("wb") as handle:
        write_po(handle, catalogue)

    edition = i18n.build("zh_CN", locales, tmp_path / "zh")
    page = (edition / f"{PAGE}.html").read_text(encoding="utf-8")
    assert 'lang="zh-CN"' in page and f"{TITLE_ZH}" in page
    english = (HTML / f"{PAGE}.html").read_text(encoding="utf-8")
    assert code_blocks(page) and code_blocks(page) == code_blocks(english), "the edition's code is the English build's"
