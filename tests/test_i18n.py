"""The translation workflow of ``tools/i18n.py`` (issue 20, started): Sphinx's gettext builder extracts
the executed MyST-NB chapters into one template per page, sphinx-intl keeps the catalogues, and a
strict build with ``language`` set (through a copy of _config.yml: jupyter-book's CLI passes no
``-D language``) puts a translated message into a page whose code is the English build's."""
from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po, write_po

import i18n
from conftest import HTML

PAGE = "book/ch04_multihead"
TITLE, TITLE_ZH = "Multi-head attention", "多头注意力"


@pytest.fixture(scope="module")
def templates(built_book, tmp_path_factory):
    """The message templates of the current English pages, extracted once for this module."""
    return i18n.extract(tmp_path_factory.mktemp("pot") / "pot")


def code_blocks(html: str) -> list[str]:
    return re.findall(r'<div class="highlight"><pre>(.*?)</pre>', html, flags=re.S)


def test_a_translated_message_reaches_its_edition_and_the_code_stays_english(templates, tmp_path):
    pot = templates
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
    # a message with numbers glued from the chapter's cells keeps them (book/_ext/translated_glue.py)
    glued = next(m.id for m in catalogue if m.id and "{glue:text}`" in m.id)
    roles = re.findall(r"\{glue:text\}`[^`]*`", glued)
    catalogue[glued].string = "译文：" + "，".join(roles) + "。"
    with po.open("wb") as handle:
        write_po(handle, catalogue)

    edition = i18n.build("zh_CN", locales, tmp_path / "zh")
    page = (edition / f"{PAGE}.html").read_text(encoding="utf-8")
    assert 'lang="zh-CN"' in page and f"{TITLE_ZH}" in page
    sentence = re.search(r"译文：(.*?)。", page, flags=re.S)
    assert sentence, f"the translation of {glued[:60]!r} is not on the page"
    values = re.findall(r'<span class="pasted-text">([^<]+)</span>', sentence.group(1))
    assert len(values) == len(roles), f"glued numbers lost in translation: {roles} -> {sentence.group(1)[:300]}"
    english = (HTML / f"{PAGE}.html").read_text(encoding="utf-8")
    assert code_blocks(page) and code_blocks(page) == code_blocks(english), "the edition's code is the English build's"


# --------------------------------------------------------------------------- the committed Chinese catalogues
CATALOGUES = i18n.LOCALES / "zh_CN" / "LC_MESSAGES" / "book"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
WORDS = re.compile(r"[A-Za-z]{3,}")


def has_words(message_id: str) -> bool:
    """Words outside code, math and roles: what a translator translates (a bare number or formula is not)."""
    return bool(WORDS.search(re.sub(r"`[^`]*`|\$[^$]*\$|\{[a-z:]+\}", "", message_id)))


def catalogue(path):
    with path.open("rb") as handle:
        return read_po(handle)


def test_every_page_has_a_catalogue_in_step_with_its_english_text(templates):
    """The catalogues hold exactly the messages of the current English pages (run
    `python tools/i18n.py extract && python tools/i18n.py update` after changing a page's prose)."""
    for template_path in sorted((templates / "book").glob("*.pot")):
        po = CATALOGUES / (template_path.stem + ".po")
        assert po.is_file(), f"no catalogue {po.relative_to(i18n.ROOT)}: run `python tools/i18n.py update`"
        # messages without words stay untranslated, and some are numbers a page computes (they may differ
        # in the last digit between two machines): only messages with words must be in step
        expected = {m.id for m in catalogue(template_path) if m.id and has_words(m.id)}
        held = {m.id for m in catalogue(po) if m.id and has_words(m.id)}
        stale = sorted(held - expected)[:3]
        missing = sorted(expected - held)[:3]
        assert not stale and not missing, (f"{po.name} is out of step with book/{template_path.stem}.md "
                                           f"(missing {missing}, stale {stale}): run `python tools/i18n.py extract` "
                                           "and `python tools/i18n.py update`")


def test_translations_are_chinese_and_none_is_fuzzy():
    """A translation of words has Chinese characters (a copy of the English is not a translation), and no
    entry is left fuzzy (sphinx-intl marks an entry fuzzy when its English changed)."""
    problems = []
    for po in sorted(CATALOGUES.glob("*.po")):
        for message in catalogue(po):
            if not message.id or not message.string:
                continue
            where = f"{po.name}: {message.id[:50]!r}"
            if message.fuzzy:
                problems.append(f"{where} is fuzzy: check the translation against the new English, then unmark it")
            if has_words(message.id) and not CJK.search(message.string):
                problems.append(f"{where}: the translation has no Chinese characters")
    assert not problems, "\n".join(problems[:20])


def test_the_chinese_edition_builds_strictly_from_the_committed_catalogues(built_book, tmp_path):
    edition = i18n.build("zh_CN", out=tmp_path / "zh")
    pages = sorted(edition.glob("book/*.html"))
    assert len(pages) >= 20
    assert all('lang="zh-CN"' in page.read_text(encoding="utf-8") for page in pages)
