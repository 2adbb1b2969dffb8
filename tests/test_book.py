"""The book builds strictly and works offline.

The `built_book` fixture (tests/conftest.py) makes one strict build per session
(`jupyter-book build . -W -n --keep-going`, the command of `make book`) into the default `_build/`,
so that it shares the execution cache with `make book`; a clean clone (CI) executes every chapter
and fails on any warning. The built HTML is then checked: no page and no stylesheet loads a script,
style, font or image from the network, and every page loads the local copy of MathJax 3.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
MATHJAX_ENTRY = "mathjax/tex-mml-chtml.js"
NETWORK = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
# url(...) in CSS; a data: URI (e.g. an SVG icon whose xmlns is http://www.w3.org/...) is local.
CSS_URL = re.compile(r"""url\(\s*['"]?(?!data:)([^'")]+)""", re.IGNORECASE)
CSS_IMPORT = re.compile(r"""@import\s+(?:url\()?\s*['"]?([^'");\s]+)""", re.IGNORECASE)


class Resources(HTMLParser):
    """Collect every address a browser would fetch while loading the page."""

    # tag -> attributes that the browser fetches on load (a plain <a href> is a link, not a load)
    FETCHED = {"script": ("src",), "img": ("src", "srcset"), "iframe": ("src",), "source": ("src", "srcset"),
               "video": ("src", "poster"), "audio": ("src",), "embed": ("src",), "object": ("data",),
               "input": ("src",)}

    def __init__(self):
        super().__init__()
        self.fetched: list[tuple[str, str]] = []  # (tag, address)
        self.inline_styles: list[str] = []
        self.inline_scripts: list[str] = []  # bodies of <script> without src (e.g. a loader's address)
        self._in_style = False
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in self.FETCHED.get(tag, ()):
            if attrs.get(name):
                self.fetched.append((tag, attrs[name]))
        if tag == "link" and attrs.get("href"):
            rel = (attrs.get("rel") or "").lower()
            if any(kind in rel for kind in ("stylesheet", "preload", "icon", "modulepreload", "prefetch", "manifest")):
                self.fetched.append((f"link rel={rel}", attrs["href"]))
        if attrs.get("style"):
            self.inline_styles.append(attrs["style"])
        self._in_style = tag == "style"
        self._in_script = tag == "script" and not attrs.get("src")

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_style:
            self.inline_styles.append(data)
        if self._in_script:
            self.inline_scripts.append(data)


def css_network_urls(text: str) -> list[str]:
    urls = CSS_URL.findall(text) + CSS_IMPORT.findall(text)
    return list(dict.fromkeys(u for u in urls if NETWORK.match(u)))  # @import url(...) matches both


def toc_files() -> list[str]:
    """The pages listed in _toc.yml (comments skipped), e.g. 'book/ch02_attention'."""
    text = (ROOT / "_toc.yml").read_text()
    files = re.findall(r"^\s*(?:-\s*)?(?:file|root):\s*(\S+)", text, flags=re.MULTILINE)
    return [f.removesuffix(".md").removesuffix(".ipynb") for f in files]


# `built_book`, one strict build per test session shared with tests/test_browser.py, is in conftest.py.


@pytest.mark.slow
def test_every_toc_page_is_built(built_book):
    pages = toc_files()
    assert "book/intro" in pages and "book/ch00_welcome" in pages, f"_toc.yml lists {pages}"
    missing = [p for p in pages if not (built_book / f"{p}.html").is_file()]
    assert not missing, f"pages in _toc.yml without built HTML: {missing}"
    assert (built_book / "index.html").is_file(), "no index.html at the root of the built book"


@pytest.mark.slow
def test_no_page_loads_anything_from_the_network(built_book):
    pages = sorted(p for p in built_book.rglob("*.html") if "mathjax" not in p.relative_to(built_book).parts)
    assert len(pages) >= 3, f"only {len(pages)} HTML pages built"
    offending = []
    for page in pages:
        parser = Resources()
        parser.feed(page.read_text(encoding="utf-8"))
        for tag, address in parser.fetched:
            if NETWORK.match(address):
                offending.append(f"{page.relative_to(built_book)}: <{tag}> {address}")
        for style in parser.inline_styles:
            offending += [f"{page.relative_to(built_book)}: inline style url {u}" for u in css_network_urls(style)]
        for script in parser.inline_scripts:  # e.g. thebe's loader, which jupyter-book adds (book/_ext drops it)
            offending += [f"{page.relative_to(built_book)}: inline script mentions {u}"
                          for u in re.findall(r"https?://[^\s\"'`]+", script)]
    for css in sorted((built_book / "_static").rglob("*.css")):
        offending += [f"{css.relative_to(built_book)}: {u}" for u in css_network_urls(css.read_text(encoding="utf-8"))]
    assert not offending, "network resources in the built book:\n" + "\n".join(offending)


@pytest.mark.slow
def test_every_page_loads_the_local_mathjax(built_book):
    entry = built_book / MATHJAX_ENTRY
    assert entry.is_file() and entry.stat().st_size > 100_000, f"local MathJax missing or truncated at {entry}"
    fonts = list((built_book / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert len(fonts) >= 10, f"MathJax CHTML fonts missing next to {entry} (found {len(fonts)})"
    for name in toc_files():
        page = built_book / f"{name}.html"
        scripts = [a for tag, a in _fetched(page) if tag == "script"]
        mathjax = [s for s in scripts if s.split("?")[0].endswith(MATHJAX_ENTRY)]
        assert mathjax, f"{page.name} does not load {MATHJAX_ENTRY}; its scripts: {scripts}"
        target = (page.parent / mathjax[0].split("?")[0]).resolve()
        assert target == entry.resolve(), f"{page.name} loads MathJax from {target}, not from {entry}"


@pytest.mark.slow
def test_chapters_show_computed_figures(built_book):
    """Each chapter with experiments shows figures that its own code produced at build time."""
    for name in toc_files():
        if not re.match(r"book/ch(?!00)\d\d_", name):
            continue
        images = [a for tag, a in _fetched(built_book / f"{name}.html") if tag == "img"]
        computed = [a for a in images if "_images/" in a and a.split("?")[0].endswith(".png")]
        assert computed, f"{name}: no figure computed by the chapter (images: {images})"
        for address in computed:
            assert (built_book / name).parent.joinpath(address).resolve().is_file(), f"{name}: {address} missing"


def _fetched(page: Path) -> list[tuple[str, str]]:
    parser = Resources()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.fetched


def test_network_detection_catches_cdn_addresses():
    """The checks above can fail: they recognise the usual ways a page pulls from a CDN."""
    parser = Resources()
    parser.feed('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
                '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">'
                '<img src="http://example.org/x.png"><a href="https://example.org">a link is fine</a>'
                '<style>@import url("https://fonts.googleapis.com/css2?family=Roboto");</style>')
    remote = [a for _, a in parser.fetched if NETWORK.match(a)]
    assert len(remote) == 3, remote
    loader = Resources()
    loader.feed('<script>const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"</script>'
                '<script src="../_static/local.js"></script>')
    assert loader.inline_scripts == ['const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"']
    assert not [a for _, a in loader.fetched if NETWORK.match(a)]
    assert css_network_urls(" ".join(parser.inline_styles)) == ["https://fonts.googleapis.com/css2?family=Roboto"]
    assert css_network_urls("@font-face{src:url(https://x.org/f.woff2)}") == ["https://x.org/f.woff2"]
    assert css_network_urls("a{background:url(\"data:image/svg+xml;xmlns='http://www.w3.org/2000/svg'\")}") == []
    assert css_network_urls("a{background:url(../img/x.png)}") == []


from attnlab.course.release import exercise_chapters  # noqa: E402  (the one chapter <-> exercise map)

# {chapter: assignment}, from the file names: psNN_<topic> is the exercise of book/<label>_<topic>.md.
EXERCISES = {Path(page).stem: assignment for assignment, page in exercise_chapters().items() if page}


def test_chapters_end_with_their_exercise():
    """Every chapter with an assignment names its exercise notebook in a final "Exercise" section,
    and says what it grades."""
    assert len(EXERCISES) >= 9 and "appA_bug_hunt" in EXERCISES, EXERCISES
    for chapter, assignment in EXERCISES.items():
        text = (ROOT / "book" / f"{chapter}.md").read_text(encoding="utf-8")
        assert "\n## Exercise\n" in text, f"book/{chapter}.md has no '## Exercise' section"
        last_section = text.rsplit("\n## Exercise\n", 1)[1]
        path = f"exercises/{assignment}/{assignment}.ipynb"
        assert path in last_section, f"book/{chapter}.md: the Exercise section does not name {path}"
        assert (ROOT / path).is_file(), f"{path} is missing: generate it with `make exercises`"
        link = f"(path:../{path})"  # a download link: the built book ships the notebook
        assert link in last_section, f"book/{chapter}.md: no download link {link} in its Exercise section"
        assert "grade" in last_section, f"book/{chapter}.md: the Exercise section does not say what it grades"


def test_chapter_code_is_included_not_copied():
    """Model code is shown from the reference, never retyped (no `class ...Attention` in a chapter): by
    literalinclude, or, for what an exercise asks to write, by `{skeleton}` (signature and docstring)."""
    import importlib

    for chapter in EXERCISES:
        text = (ROOT / "book" / f"{chapter}.md").read_text(encoding="utf-8")
        for name in ("class MultiHeadAttention", "class AdditiveAttention", "def scaled_dot_product_attention",
                     "def masked_softmax", "class Seq2SeqRNN"):
            assert name not in text, f"book/{chapter}.md defines {name!r}: include the reference instead"
        for target in re.findall(r"```\{literalinclude\} (\S+)", text):
            assert (ROOT / "book" / target).resolve().is_file(), f"book/{chapter}.md includes a missing file {target}"
        for dotted in re.findall(r"```\{skeleton\} (\S+)", text):
            module, _, name = dotted.rpartition(".")
            assert hasattr(importlib.import_module(module), name), f"book/{chapter}.md: no {dotted} to show"


# Every image says what it shows: a computed figure gets its text from `mystnb: image: alt:` in the
# YAML header of the cell that DRAWS it (myst-nb applies a cell's image options to that cell's own
# outputs only); without one the HTML writes the image's file path as its alt text.
MIN_ALT_CHARS = 30
IMAGE_FILE = re.compile(r"\S+\.(png|jpe?g|gif|svg|webp)", re.IGNORECASE)


class Images(HTMLParser):
    """Collect (src, alt) of every <img>; alt is None when the attribute is absent."""

    def __init__(self):
        super().__init__()
        self.images: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            attrs = dict(attrs)
            self.images.append((attrs.get("src") or "", attrs.get("alt")))


def images_without_alt_text(html: str) -> list[str]:
    """The images of one page whose alt text is missing, shorter than MIN_ALT_CHARS or a file path."""
    parser = Images()
    parser.feed(html)
    bad = []
    for src, alt in parser.images:
        text = (alt or "").strip()
        if len(text) < MIN_ALT_CHARS or IMAGE_FILE.fullmatch(text) or text == src.strip():
            bad.append(f"{src} (alt {alt!r})")
    return bad


def pages_with_images_without_alt_text(root: Path, skip: tuple[str, ...] = ()) -> list[str]:
    pages = sorted(p for p in root.rglob("*.html")
                   if "mathjax" not in p.relative_to(root).parts and p.relative_to(root).parts[0] not in skip)
    assert len(pages) >= 3, f"only {len(pages)} HTML pages under {root}"
    return [f"{page.relative_to(root)}: {image}"
            for page in pages for image in images_without_alt_text(page.read_text(encoding="utf-8"))]


@pytest.mark.slow
def test_every_image_has_alt_text(built_book):
    # the translated editions (_build/html/zh/) are checked by the next test, from their own build
    bad = pages_with_images_without_alt_text(built_book, skip=("zh",))
    assert not bad, ("images without an alt text of at least 30 characters (give the cell that draws the figure "
                     "`mystnb: image: alt:`):\n" + "\n".join(bad))


@pytest.mark.slow
def test_every_image_of_the_zh_edition_has_alt_text(built_zh_book):
    bad = pages_with_images_without_alt_text(built_zh_book)
    assert not bad, ("images of the zh edition without an alt text of at least 30 characters:\n" + "\n".join(bad))


def test_alt_text_check_catches_missing_short_and_path_alts():
    """The check above can fail: a file path as alt (what the HTML writes when a figure has none),
    a missing or short alt; a real description passes."""
    page = ('<img alt="../_images/3bbc8f3b.png" src="../_images/3bbc8f3b.png">'
            '<img src="b.png"><img alt="a plot" src="c.png">'
            '<img alt="Line plot of the loss against the training step: it falls to near 0." src="d.png">')
    bad = images_without_alt_text(page)
    assert [entry.split(" ")[0] for entry in bad] == ["../_images/3bbc8f3b.png", "b.png", "c.png"], bad
    assert not images_without_alt_text('<img alt="损失随训练步数变化的折线图：参考模型的损失降到接近 0，而没有残差连接的层一直停留在随机水平。" src="e.png">')
