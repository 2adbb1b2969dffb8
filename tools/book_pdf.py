"""The whole book as one PDF: ``make pdf`` (= ``python tools/book_pdf.py``, after ``make book``).

    python tools/book_pdf.py [--html _build/html] [--out _build/pdf/attention-from-scratch.pdf]
    python tools/book_pdf.py --lang zh_CN       # the Chinese edition, _build/html/zh -> ...zh_CN.pdf

Headless Chromium prints each page of the built HTML book, in the order of ``_toc.yml``, and pypdf
joins them into one file with a bookmark per page. Printing the HTML, not LaTeX, because the HTML
is what the strict build and the browser tests already prove right: the same MathJax rendering
(math as glyphs, never raw TeX), the same computed figures and diagrams, the same code; a LaTeX
build would need a TeX distribution, its own fonts and its own pass over every page's math and
images. The pages are served on 127.0.0.1 (MathJax loads its fonts by HTTP) and each is printed
once MathJax has typeset and every image has decoded; the theme's print style drops the sidebars.

Chromium is Debian's package (``tools/browser.find_chromium`` installs it as root; otherwise the
error says what to install). Nothing is fetched from the network.

A translated edition (``--lang zh_CN``, built by ``tools/i18n.py`` into its folder of the site) is printed
the same way into ``attention-from-scratch.<lang>.pdf``, its bookmarks titled by its pages' own headings.
Its characters need a font that has them (Noto Sans CJK, Debian's ``fonts-noto-cjk``, which
``find_chromium`` installs as root); Chromium embeds the glyphs it uses, so the PDF reads anywhere.
"""
from __future__ import annotations

import argparse
import html as html_text
import io
import re
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


H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S)


def heading(page: Path) -> str:
    """The text of a built page's first heading (without its ``#`` anchor link)."""
    found = H1.search(page.read_text(encoding="utf-8"))
    if not found:
        raise SystemExit(f"make pdf: {page} has no <h1>")
    text = re.sub(r'<a class="headerlink".*?</a>', "", found.group(1), flags=re.S)
    return " ".join(html_text.unescape(re.sub(r"<[^>]+>", "", text)).split())


def edition(lang: str, root: Path = ROOT) -> tuple[Path, Path]:
    """(built HTML, PDF) of the edition in ``lang``: its folder of the site in _config.yml's editions."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    editions = config["sphinx"]["config"].get("editions") or [{"language": "en", "folder": ""}]
    folder = next((e["folder"] for e in editions if e["language"] == lang), None)
    if folder is None:
        raise SystemExit(f"make pdf: no edition {lang} in _config.yml ({', '.join(e['language'] for e in editions)})")
    if not folder:
        return root / "_build" / "html", DEFAULT_OUT
    return root / "_build" / "html" / folder, DEFAULT_OUT.with_suffix(f".{lang}.pdf")


def print_book(html: Path, out: Path, root: Path = ROOT, titles_from_html: bool = False,
               title: str = "Attention and Transformers, from scratch") -> Path:
    """Print the built book ``html`` into ``out``; bookmarks are titled by the English sources' headings,
    or by the built pages' own (``titles_from_html``, for a translated edition)."""
    from pypdf import PdfReader, PdfWriter

    chromium, reason = find_chromium()
    if chromium is None:
        raise SystemExit(f"make pdf: {reason}")
    missing = [page for page, _ in pages_in_order(root) if not (html / page).is_file()]
    if missing:
        raise SystemExit(f"make pdf: {html} lacks {', '.join(missing)}: build the book first (`make book`)")
    pages = [(page, heading(html / page) if titles_from_html else name) for page, name in pages_in_order(root)]
    writer = PdfWriter()
    with StaticServer(html) as base, Browser(chromium) as browser:
        for page, title in pages:
            report = browser.open(base + page, settle_js=SETTLE_JS)
            if not report.loaded:
                raise SystemExit(f"make pdf: {page} did not load")
            first = len(writer.pages)
            writer.append(PdfReader(io.BytesIO(browser.print_pdf(**PAGE))))
            writer.add_outline_item(title=title, page_number=first)
    writer.add_metadata({"/Title": title, "/Author": "The course authors"})
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as handle:
        writer.write(handle)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", default="en", help="the edition (a language of _config.yml's editions: en, zh_CN)")
    parser.add_argument("--html", type=Path, help="the built book (default: the edition's folder of _build/html)")
    parser.add_argument("--out", type=Path, help="the PDF to write (default: _build/pdf/attention-from-scratch[.LANG].pdf)")
    args = parser.parse_args(argv)
    html, out = edition(args.lang)
    title = "Attention and Transformers, from scratch" + ("" if args.lang == "en" else f" ({args.lang})")
    out = print_book(args.html or html, args.out or out, titles_from_html=args.lang != "en", title=title)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
