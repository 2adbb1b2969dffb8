"""The book as one PDF (`make pdf`, tools/book_pdf.py): every page in order, math typeset, nothing raw.

The PDF is printed from the session's one strict build (``built_book``) and read back with pypdf:
each page's title is found in order under its bookmark, and no TeX source or MathJax delimiter is
left in the text (math is printed as glyphs). Chromium is Debian's package (installed as root).
"""
from __future__ import annotations

import re
import unicodedata

import pytest
from pypdf import PdfReader

import book_pdf  # tools/book_pdf.py (tests/conftest.py puts tools/ on the path)
from browser import find_chromium

RAW_TEX = re.compile(r"\\(frac|sqrt|mathrm|text|begin|end|left|right|top|sum|exp)\b|\$\$|\\\(|\\\[")


@pytest.fixture(scope="module")
def pdf(built_book, tmp_path_factory):
    if find_chromium()[0] is None:
        pytest.skip(find_chromium()[1])
    return PdfReader(str(book_pdf.print_book(built_book, tmp_path_factory.mktemp("pdf") / "book.pdf")))


@pytest.mark.slow
def test_every_page_is_in_the_pdf_in_order_with_a_bookmark(pdf):
    pages = book_pdf.pages_in_order()
    outline = [(item.title, pdf.get_destination_page_number(item)) for item in pdf.outline]
    assert [title for title, _ in outline] == [title for _, title in pages]
    starts = [number for _, number in outline]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), "a page printed on no sheet"
    for (title, start) in outline:
        # NFKC: the PDF's text has typographic ligatures (the "fi" of "first" as one glyph)
        text = " ".join(unicodedata.normalize("NFKC", pdf.pages[start].extract_text()).split())
        words = " ".join(title.split()[:3])
        assert words in text, f"{title!r} is not on its first sheet ({start + 1}): {text[:300]!r}"


@pytest.mark.slow
def test_no_raw_tex_in_the_pdf(pdf):
    raw = {}
    for number, page in enumerate(pdf.pages, start=1):
        text = page.extract_text()
        for line in text.splitlines():
            if RAW_TEX.search(line):
                raw.setdefault(number, []).append(line.strip()[:120])
    # Code is printed as code: a TeX command inside a Python string of a code cell is allowed.
    raw = {n: lines for n, lines in raw.items() if not all(re.search(r"[\"'].*\\\\", l) for l in lines)}
    assert not raw, f"raw TeX on sheets {sorted(raw)[:10]}: {list(raw.values())[:3]}"
    assert len(pdf.pages) > 2 * len(book_pdf.pages_in_order())


# ----------------------------------------------------------------------------------------------
# The Chinese edition's PDF (`make pdf`'s second file, `python tools/book_pdf.py --lang zh_CN`)

def nfkc(text: str) -> str:
    """Text as a reader means it: Chromium's CJK font maps some glyphs to the look-alike Kangxi radicals
    (⼒ U+2F12 for 力), which NFKC folds back, as it folds the "fi" ligature."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@pytest.fixture(scope="module")
def zh_pdf(built_zh_book, tmp_path_factory):
    if find_chromium()[0] is None:
        pytest.skip(find_chromium()[1])
    html, out = book_pdf.edition("zh_CN")
    assert html == built_zh_book and out.name == "attention-from-scratch.zh_CN.pdf", (html, out)
    path = tmp_path_factory.mktemp("pdf") / out.name
    return PdfReader(str(book_pdf.print_book(built_zh_book, path, titles_from_html=True)))


def unembedded_fonts(page) -> list[str]:
    """The fonts a PDF page uses without carrying their glyphs (a reader's machine would substitute them:
    boxes for Chinese). A Type 3 font draws its glyphs itself; the others need a FontFile."""
    missing = []
    for font in (page.get("/Resources", {}).get("/Font") or {}).values():
        font = font.get_object()
        if font.get("/Subtype") == "/Type3":
            continue
        descriptor = font.get("/FontDescriptor")
        if descriptor is None and "/DescendantFonts" in font:
            descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
        descriptor = descriptor.get_object() if descriptor is not None else {}
        if not any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")):
            missing.append(str(font.get("/BaseFont")))
    return missing


@pytest.mark.slow
def test_the_chinese_pdf_has_every_page_in_chinese_with_its_fonts_embedded(zh_pdf, built_zh_book):
    pages = book_pdf.pages_in_order()
    outline = [(item.title, zh_pdf.get_destination_page_number(item)) for item in zh_pdf.outline]
    assert [title for title, _ in outline] == [book_pdf.heading(built_zh_book / page) for page, _ in pages]
    chapter_4 = next(start for (title, start), (page, _) in zip(outline, pages) if page == "book/ch04_multihead.html")
    text = nfkc(zh_pdf.pages[chapter_4].extract_text())
    assert "多头注意力" in text and "注意力" in text.replace("多头注意力", "", 1), \
        f"chapter 4's first sheet does not read 多头注意力 … 注意力: {text[:300]!r}"
    for title, start in outline:
        assert nfkc(title)[:4] in nfkc(zh_pdf.pages[start].extract_text()), f"{title!r} is not on sheet {start + 1}"
    missing = {n + 1: fonts for n, page in enumerate(zh_pdf.pages) if (fonts := unembedded_fonts(page))}
    assert not missing, f"fonts not embedded (sheet: fonts): {dict(list(missing.items())[:5])}"
    assert len(zh_pdf.pages) > 2 * len(pages)


def test_the_font_check_names_a_font_that_is_not_embedded():
    from pypdf.generic import DictionaryObject, NameObject

    def font(**entries):
        return DictionaryObject({NameObject(f"/{k}"): v for k, v in entries.items()})

    helvetica = font(Type=NameObject("/Font"), Subtype=NameObject("/Type1"), BaseFont=NameObject("/Helvetica"))
    type3 = font(Type=NameObject("/Font"), Subtype=NameObject("/Type3"))
    embedded = font(Type=NameObject("/Font"), Subtype=NameObject("/TrueType"), BaseFont=NameObject("/X+DejaVu"),
                    FontDescriptor=font(FontFile2=NameObject("/stream")))
    page = {"/Resources": {"/Font": {"/F1": helvetica, "/F2": type3, "/F3": embedded}}}
    assert unembedded_fonts(page) == ["/Helvetica"]
