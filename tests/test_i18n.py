"""The translation workflow of ``tools/i18n.py`` (issue 20, started): Sphinx's gettext builder extracts
the executed MyST-NB chapters into one template per page, sphinx-intl keeps the catalogues, and a
strict build with ``language`` set (through a copy of _config.yml: jupyter-book's CLI passes no
``-D language``) puts a translated message into a page whose code is the English build's."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

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


def test_the_chinese_edition_builds_strictly_from_the_committed_catalogues(built_zh_book):
    """`make book`'s second step (the session's one build, tests/conftest.py) into _build/html/zh/."""
    assert built_zh_book == HTML / "zh"
    pages = sorted(built_zh_book.glob("book/*.html"))
    assert len(pages) >= 20
    assert all('lang="zh-CN"' in page.read_text(encoding="utf-8") for page in pages)


def code_problems(english: str, chinese: str, page: str) -> list[str]:
    """The code blocks of a page that differ between the editions (none may: code is never translated)."""
    en, zh = code_blocks(english), code_blocks(chinese)
    if len(en) != len(zh):
        return [f"{page}: {len(en)} code blocks in English, {len(zh)} in Chinese"]
    return [f"{page}: code block {i} differs: {a[:80]!r} / {b[:80]!r}" for i, (a, b) in enumerate(zip(en, zh)) if a != b]


def test_every_chinese_page_shows_the_code_of_its_english_page(built_book, built_zh_book):
    problems, pages = [], sorted(built_book.glob("book/*.html"))
    assert len(pages) >= 20
    for english in pages:
        chinese = built_zh_book / "book" / english.name
        problems += code_problems(english.read_text(encoding="utf-8"), chinese.read_text(encoding="utf-8"),
                                  english.name)
    assert not problems, "\n".join(problems[:10])
    # and the comparison can fail
    page = '<div class="highlight"><pre>x = 1</pre>'
    assert code_problems(page, page.replace("x = 1", "x = 2"), "p.html")


# --------------------------------------------------------------------------- the two editions as one site
def edition_pages(root: Path, folders: list[str]) -> list[str]:
    """Every page of the edition at ``root`` (not MathJax's files, not another edition's folder, not a
    redirect such as index.html), relative to ``root``."""
    skip = {"mathjax", "_static", "_sources", "_downloads", "_images", *folders}
    pages = []
    for path in sorted(root.rglob("*.html")):
        relative = path.relative_to(root)
        if relative.parts[0] in skip or 'http-equiv="Refresh"' in path.read_text(encoding="utf-8")[:2000]:
            continue
        pages.append(relative.as_posix())
    return pages


SWITCH = re.compile(r'<nav class="edition-switch".*?</nav>', re.S)
SWITCH_LINK = re.compile(r'<a class="[^"]*edition-switch-link[^"]*" href="([^"]+)" hreflang="([^"]+)"[^>]*>(.*?)</a>', re.S)


def switch_problems(root: Path, page: str, other_root: Path, other_lang: str, label: str) -> list[str]:
    """What is wrong with the language switch of ``root/page``: it must sit in the article header and link,
    relatively, to the same page of the other edition, which exists."""
    html = (root / page).read_text(encoding="utf-8")
    header = html.find('class="bd-header-article')
    nav = SWITCH.search(html)
    if not nav:
        return [f"{page}: no language switch"]
    problems = []
    if header < 0 or not header < nav.start() < html.find("<h1", header):
        problems.append(f"{page}: the language switch is not in the article header at the top of the page")
    links = SWITCH_LINK.findall(nav.group(0))
    if len(links) != 1:
        return problems + [f"{page}: {len(links)} links in the language switch, expected 1"]
    href, lang, text = links[0]
    target = ((root / page).parent / href).resolve()
    if href.startswith(("/", "http:", "https:", "file:")):
        problems.append(f"{page}: the switch's address {href} is not relative")
    if target != (other_root / page).resolve():
        problems.append(f"{page}: the switch points at {href}, not at the same page of the {other_lang} edition")
    elif not target.is_file():
        problems.append(f"{page}: the switch points at {href}, which is not built")
    if lang != other_lang or label not in text:
        problems.append(f"{page}: the switch says {text.strip()!r} ({lang}), expected {label!r} ({other_lang})")
    if f'<link rel="alternate" hreflang="{other_lang}" href="{href}"' not in html:
        problems.append(f"{page}: no <link rel=alternate hreflang={other_lang}> to {href}")
    return problems


def test_every_page_of_each_edition_links_its_counterpart(built_book, built_zh_book):
    english, chinese = i18n.editions_config()[0], i18n.editions_config()[1]
    assert (english["language"], chinese["language"], chinese["folder"]) == ("en", "zh_CN", "zh")
    en_pages = edition_pages(built_book, [chinese["folder"]])
    zh_pages = edition_pages(built_zh_book, [])
    assert len(en_pages) >= 20 and en_pages == zh_pages, (
        f"the editions have different pages: {sorted(set(en_pages) ^ set(zh_pages))}")
    problems = [p for page in en_pages for p in switch_problems(built_book, page, built_zh_book, "zh-CN", "中文")]
    problems += [p for page in zh_pages for p in switch_problems(built_zh_book, page, built_book, "en", "English")]
    assert not problems, "\n".join(problems[:20])


def test_the_counterpart_check_fails_on_a_page_without_a_switch(built_book, built_zh_book, tmp_path):
    """A page without the switch, one whose link points at another page, and one whose target is missing."""
    page = "book/ch04_multihead.html"
    html = (built_book / page).read_text(encoding="utf-8")
    (tmp_path / "en" / "book").mkdir(parents=True)
    (tmp_path / "en" / page).write_text(SWITCH.sub("", html), encoding="utf-8")
    assert switch_problems(tmp_path / "en", page, built_zh_book, "zh-CN", "中文") == [f"{page}: no language switch"]
    (tmp_path / "en" / page).write_text(html.replace("zh/book/ch04_multihead.html", "zh/book/ch03_self_attention.html"),
                                        encoding="utf-8")
    assert any("not at the same page" in p for p in switch_problems(tmp_path / "en", page, built_zh_book, "zh-CN", "中文"))
    (tmp_path / "en" / page).write_text(html, encoding="utf-8")
    assert any("not built" in p for p in switch_problems(tmp_path / "en", page, tmp_path / "en" / "zh", "zh-CN", "中文"))


def test_a_page_links_its_counterpart_relatively_from_any_depth():
    sys.path.insert(0, str(i18n.ROOT / "book" / "_ext"))
    try:
        import editions
    finally:
        sys.path.remove(str(i18n.ROOT / "book" / "_ext"))
    en, zh = {"language": "en", "folder": ""}, {"language": "zh_CN", "folder": "zh"}
    assert editions.counterpart("book/ch04_multihead", en, zh) == "../zh/book/ch04_multihead.html"
    assert editions.counterpart("book/ch04_multihead", zh, en) == "../../book/ch04_multihead.html"
    assert editions.counterpart("search", en, zh) == "zh/search.html"
    assert editions.counterpart("search", zh, en) == "../search.html"
    assert editions.hreflang("zh_CN") == "zh-CN"
    config = type("Config", (), {"language": "fr", "editions": [{**en, "label": "English"}, {**zh, "label": "中文"}]})()
    with pytest.raises(Exception, match="not one of the editions"):
        editions.current(config)


# --------------------------------------------------------------------------- Chinese full-text search
def search_index(html: Path) -> dict:
    text = (html / "searchindex.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("(") + 1:text.rindex(")")])


def pages_with(index: dict, word: str) -> set[str]:
    """The pages whose text or title has ``word`` as a term of Sphinx's index (what its search looks up)."""
    found = set()
    for terms in (index["terms"], index["titleterms"]):
        hits = terms.get(word, [])
        found |= {index["docnames"][i] for i in ([hits] if isinstance(hits, int) else hits)}
    return found


def test_chinese_search_finds_a_word_inside_a_sentence(built_zh_book):
    """Sphinx's zh search cuts Chinese text into words with jieba (pinned): without it the index holds no
    Chinese term at all, since Chinese writes no spaces between words."""
    index = search_index(built_zh_book)
    assert PAGE in pages_with(index, "注意力"), f"searching 注意力 does not find {PAGE}"
    # words that occur only inside longer runs of characters: 多头 (of 多头注意力), 注意 (of 注意力)
    for word in ("多头", "注意"):
        assert PAGE in pages_with(index, word), f"{word} (inside a longer word) is not a search term of {PAGE}"
    english = search_index(HTML)
    assert not pages_with(english, "注意力"), "the English edition's index has the Chinese term"


def test_chinese_search_knows_every_term_of_the_glossary(built_zh_book):
    """jieba alone cuts 束搜索 (beam search) into 和束 / 搜索: the glossary's Chinese terms are its user
    dictionary (book/_ext/editions.py), so each is a search term of the glossary page."""
    sys.path.insert(0, str(i18n.ROOT / "book" / "_ext"))
    try:
        import editions
    finally:
        sys.path.remove(str(i18n.ROOT / "book" / "_ext"))
    terms = editions.glossary_terms()
    assert {"束搜索", "多头注意力", "缩放点积注意力", "键值缓存", "层规范化"} <= set(terms), terms
    index = search_index(built_zh_book)
    missing = [term for term in terms if "book/appB_glossary" not in pages_with(index, term)]
    assert not missing, f"glossary terms that searching the Chinese edition does not find on appendix B: {missing}"


# --------------------------------------------------------------------------- figures: a Chinese label renders
def test_the_book_style_names_only_a_font_that_matplotlib_ships():
    """book/course.mplstyle asks for DejaVu Sans alone (matplotlib's own font): a learner who runs a chapter
    on Colab or Binder, without a CJK font, gets no "findfont" warning under every plot. The Chinese
    texts of the zh edition's figures are drawn with Noto Sans CJK SC explicitly, at execution
    (attnlab.course.figures, diagrams; tests/test_translated_plots.py)."""
    style = (i18n.ROOT / "book" / "course.mplstyle").read_text(encoding="utf-8")
    families = [line.split(":", 1)[1].strip() for line in style.splitlines() if line.startswith("font.family")]
    assert families == ["DejaVu Sans"], families


def test_each_edition_offers_the_exercise_notebook_in_its_language(built_book, built_zh_book):
    """A chapter's exercise link: the English release in English, exercises_zh/ in the Chinese edition
    (book/_ext/editions.py), the same notebook but for its prose and one line of the setup cell."""
    for root, language in ((built_book, None), (built_zh_book, "zh_CN")):
        html = (root / "book" / "ch02_attention.html").read_text(encoding="utf-8")
        links = re.findall(r'href="\.\./(_downloads/[^"]+/ps02_attention\.ipynb)"', html)
        assert links, f"{root}: chapter 2 offers no ps02_attention.ipynb"
        notebook = json.loads((root / links[0]).read_text(encoding="utf-8"))
        assert notebook["metadata"].get("attnlab", {}).get("language") == language, (root, notebook["metadata"])


def test_the_words_the_book_extensions_write_are_in_the_editions_language(built_book, built_zh_book):
    """The solutions appendix's sentences and the exercise menu come from our extensions, not from a page:
    they are messages of messages.po (``N_``), in the language of the edition being built."""
    english = (built_book / "book" / "appC_solutions.html").read_text(encoding="utf-8")
    chinese = (built_zh_book / "book" / "appC_solutions.html").read_text(encoding="utf-8")
    assert "One way to write the graded answers of" in english and "The answer cell" in english
    assert "One way to write" not in chinese and "The answer cell" not in chinese, "appendix C has English sentences"
    assert "计分答案的一种写法" in chinese
    menu = (built_zh_book / "book" / "ch02_attention.html").read_text(encoding="utf-8")
    assert "下载练习笔记本 ps02_attention.ipynb" in menu and "Download the exercise notebook" not in menu


def test_every_figure_caption_of_the_chinese_edition_is_chinese(built_zh_book):
    """A figure's caption is written in its cell's metadata, inside the cell's output: it is still prose,
    and a message (book/_ext/translated_messages.py), unlike the output's own text."""
    captions = {}
    for page in sorted(built_zh_book.glob("book/*.html")):
        for caption in re.findall(r'<span class="caption-text">(.*?)</span><a class="headerlink"',
                                  page.read_text(encoding="utf-8"), flags=re.S):
            captions.setdefault(page.name, []).append(re.sub(r"<[^>]+>", "", caption))
    assert sum(map(len, captions.values())) >= 9, captions
    english = {page: [c[:60] for c in found if not re.search(r"[\u4e00-\u9fff]", c)] for page, found in captions.items()}
    assert not any(english.values()), f"captions left in English: { {k: v for k, v in english.items() if v} }"
