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
