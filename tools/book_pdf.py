"""The whole book as one PDF: ``make pdf`` (= ``python tools/book_pdf.py``, after ``make book``).

    python tools/book_pdf.py [--html _build/html] [--out _build/pdf/attention-from-scratch.pdf]

Headless Chromium prints each page of the built HTML book, in the order of ``_toc.yml``, and pypdf
joins them into one file with a bookmark per page. Printing the HTML, not LaTeX, because the HTML
is what the strict build and the browser tests already prove right: the same MathJax rendering
(math as glyphs, never raw TeX), the same computed figures and diagrams, the same code; a LaTeX
build would need a TeX distribution, its own fonts and its own pass over every page's math and
images. The pages are served on 127.0.0.1 (MathJax loads its fonts by HTTP) and each is printed
once MathJax has typeset and every image has decoded; the theme's print style drops the sidebars.

Chromium is Debian's package (``tools/browser.find_chromium`` installs it as root; otherwise the
error says what to install). Nothing is fetched from the network.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import yaml

from browser import SETTLE_JS, Browser, StaticServer, find_chromium

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "_build" / "pdf" / "attention-from-scratch.pdf"
# A4 with 15 mm margins (inches, as the protocol takes them).
PAGE = dict(paperWidth=8.27, paperHeight=11.69, marginTop=0.59, marginBottom=0.59, marginLeft=0.59,
            marginRight=0.59, printBackground=True, displayHeaderFooter=False)


def pages_in_order(root: Path = ROOT) -> list[tuple[str, str]]:
    """(html path relative to the build, title) of every page, in the order of ``_toc.yml``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [chapter["file"] for part in toc["parts"] for chapter in part["chapters"]]
    pages = []
    for name in files:
        title = next((line[2:].strip() for line in (root / f"{name}.md").read_text(encoding="utf-8").splitlines()
                      if line.startswith("# ")), name)
        pages.append((f"{name}.html", title))
    return pages


def print_book(html: Path, out: Path, root: Path = ROOT) -> Path:
    from pypdf import PdfReader, PdfWriter

    chromium, reason = find_chromium()
    if chromium is None:
        raise SystemExit(f"make pdf: {reason}")
    missing = [page for page, _ in pages_in_order(root) if not (html / page).is_file()]
    if missing:
        raise SystemExit(f"make pdf: {html} lacks {', '.join(missing)}: build the book first (`make book`)")
    writer = PdfWriter()
    with StaticServer(html) as base, Browser(chromium) as browser:
        for page, title in pages_in_order(root):
            report = browser.open(base + page, settle_js=SETTLE_JS)
            if not report.loaded:
                raise SystemExit(f"make pdf: {page} did not load")
            first = len(writer.pages)
            writer.append(PdfReader(io.BytesIO(browser.print_pdf(**PAGE))))
            writer.add_outline_item(title=title, page_number=first)
    writer.add_metadata({"/Title": "Attention and Transformers, from scratch", "/Author": "The course authors"})
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as handle:
        writer.write(handle)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="the built book")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the PDF to write")
    args = parser.parse_args(argv)
    out = print_book(args.html, args.out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
