"""The built book in a real browser, and the publishing set-up.

Every HTML page of `_build/html` is served on 127.0.0.1 (a random port) and loaded in headless
Chromium (Debian's package, installed here when missing and we are root; see tools/browser.py).
For each page: it loads with no console error, asks for nothing outside the local server, renders
its math (MathJax output in every math element, no raw ``$$`` left), shows its images (loaded, with
a non-zero size), every diagram of ``attnlab.course.diagrams`` sits in its chapter's <figure> with alt text
and a caption, and every local link and download resolves. Chapters offer their notebook as
``.ipynb``; chapters with an exercise offer the exercise notebook. The search page finds a word of
chapter 4. Screenshots of a few pages go to `_build/screenshots/` for people to look at.

All pages are visited once (the `visits` fixture) and the tests below judge what was recorded.
The last tests check the publishing files: the workflows and the one place for the repository address.
"""
from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest
import yaml

from browser import SETTLE_STEPS, Browser, StaticServer, find_chromium  # tools/browser.py (tests/conftest.py puts tools/ on the path)
from i18n import edition_folders  # tools/i18n.py
from attnlab.course import diagrams

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "_build" / "screenshots"
# Pages photographed for people (when they exist): the landing page, a chapter with math and
# figures, multi-head attention, and the search page showing its results.
SCREENSHOT_PAGES = ["book/intro.html", "book/ch00_welcome.html", "book/ch02_attention.html",
                    "book/ch04_multihead.html"]
CHAPTER_4 = "book/ch04_multihead.html"
SEARCH_WORD = "heads"  # a word that chapter 4 (multi-head attention) cannot do without
LOCAL_SCHEMES = ("data:", "blob:", "about:")
# Launch and repository services: linked only when `repository.url` is configured.
LAUNCH_HOSTS = ("mybinder.org", "colab.research.google.com", "deepnote.com")
PLACEHOLDER = re.compile(r"example\.(com|org|net|edu)|your[-_]?(org|name|user)|<you>|USERNAME|localhost", re.I)

# Run in the page after its load event: wait until it has settled (MathJax typeset, images loaded:
# browser.SETTLE_STEPS, shared with the PDF printer), then report what a reader would see.
INSPECT_JS = "\n(async () => {" + SETTLE_STEPS + r"""
  const math = [...document.querySelectorAll(".math")];
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const where = node.parentElement;
    if (where.closest("pre, code, script, style, textarea, .highlight, mjx-container, #search-results")) continue;
    if (node.nodeValue.includes("$$")) raw.push(node.nodeValue.trim().slice(0, 120));
  }
  const links = [...document.querySelectorAll("a[href]")].map(a => a.getAttribute("href"));
  const button = sel => { const a = document.querySelector(sel); return a ? a.getAttribute("href") : null; };
  return {
    href: location.href,
    title: document.title,
    math: math.length,
    mjx: document.querySelectorAll("mjx-container").length,
    untypeset: math.filter(e => !e.querySelector("mjx-container")).map(e => e.textContent.slice(0, 120)),
    mathErrors: [...document.querySelectorAll("mjx-merror, [data-mjx-error]")].map(e => e.textContent.slice(0, 120)),
    raw,
    images: images.map(img => {
      const figure = img.closest("figure");
      const caption = figure && figure.querySelector("figcaption");
      return {src: img.getAttribute("src"), width: img.naturalWidth, height: img.naturalHeight,
              complete: img.complete, alt: img.getAttribute("alt"), figure: figure ? figure.id : null,
              caption: caption ? caption.innerText.trim() : null};
    }),
    hasIcon: !!document.querySelector("link[rel~='icon']"),
    links,
    notebookButton: button("a.btn-download-notebook-button"),
    exerciseDownloads: [...document.querySelectorAll("a.btn-download-exercise-button")].map(a => a.getAttribute("href")),
    launch: [...document.querySelectorAll("a.btn-launch-exercise-button, .dropdown-launch-buttons a")]
              .map(a => a.getAttribute("href")),
    kernelNotebook: !!document.querySelector(".cell, .cell_output, div.highlight-ipython3"),
  };
})()
"""

FIRST_FIGURE_JS = r"""
(() => {
  const figure = document.querySelector("img[src*='_images/']");
  if (!figure) return false;
  figure.scrollIntoView({block: "center"});
  return new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(() => resolve(true))));
})()
"""

# The search page runs Sphinx's client-side search on load; wait until it reports.
SEARCH_JS = r"""
new Promise(resolve => {
  const started = Date.now();
  const poll = () => {
    const summary = document.querySelector("#search-results .search-summary");
    if ((summary && summary.innerText.trim()) || Date.now() - started > 60000) {
      resolve({summary: summary ? summary.innerText : null,
               hits: [...document.querySelectorAll("#search-results ul.search li a")].map(a => a.getAttribute("href"))});
    } else setTimeout(poll, 100);
  };
  poll();
})
"""


def pages_of(html: Path) -> list[str]:
    """Every HTML page of the English site, relative to its root (MathJax's own files are not pages, and
    the translated editions in their folders are visited by the tests at the end, a few pages each)."""
    skip = ("mathjax", "_static", "_sources", "_downloads", "_images", *edition_folders())
    return sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                  if p.relative_to(html).parts[0] not in skip)


def repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return ((config.get("repository") or {}).get("url") or "").strip()


@pytest.fixture(scope="module")
def chromium() -> str:
    path, reason = find_chromium()
    if path is None:
        pytest.skip(f"browser tests need Chromium: {reason}")
    return path


REFRESH = re.compile(r"""<meta\s+http-equiv=["']?refresh["']?\s+content=["']?\d+;\s*url=([^"'>\s]+)""", re.I)


def inspect(browser: Browser, url: str, redirects: int = 0) -> dict:
    report = browser.open(url, redirects=redirects)
    facts = browser.evaluate(INSPECT_JS)
    # Chromium asks every new site for /favicon.ico by itself; that request is the browser's, not
    # the page's, and is ignored only for a page that declares no icon of its own.
    ignore = [] if facts["hasIcon"] else ["/favicon.ico"]
    facts.update(url=url, loaded=report.loaded,
                 console=[m for m in report.console_errors if not any(i in m for i in ignore)],
                 failed=[m for m in report.failed if not any(i in m for i in ignore)],
                 requests=[u for u in report.requests if not any(u.endswith(i) for i in ignore)])
    return facts


@pytest.fixture(scope="module")
def site(chromium, built_book, built_zh_book):  # Chromium first: a skip should not wait for a build
    """(base url, browser, root) with the built book, both editions (`make book`), served locally."""
    with StaticServer(built_book) as base, Browser(chromium) as browser:
        yield base, browser, built_book


@pytest.fixture(scope="module")
def visits(site) -> dict[str, dict]:
    base, browser, html = site
    pages = pages_of(html)
    assert len(pages) >= 4, f"only {len(pages)} pages in {html}: {pages}"
    found = {}
    for page in pages:
        # a redirect page (index.html -> book/intro.html) is judged after its target has loaded
        redirect = REFRESH.search((html / page).read_text(encoding="utf-8"))
        found[page] = inspect(browser, base + page, redirects=1 if redirect else 0)
        if redirect:
            target = urllib.parse.urljoin(base + page, redirect.group(1))
            landed = browser.evaluate("location.href")
            assert landed == target, f"{page} should redirect to {target} but shows {landed}"
        if page in SCREENSHOT_PAGES:
            name = page.replace("/", "_").removesuffix(".html")
            browser.screenshot(SCREENSHOTS / f"{name}.png")
            # and the chapter's first computed figure, scrolled into the middle of the window
            if browser.evaluate(FIRST_FIGURE_JS):
                browser.screenshot(SCREENSHOTS / f"{name}_figure.png")
    return found


def _outside(base: str, requests: list[str]) -> list[str]:
    return [u for u in requests if not u.startswith(base) and not u.startswith(LOCAL_SCHEMES)]


# ----------------------------------------------------------------------------------------------
# Every page

@pytest.mark.slow
def test_every_page_loads_without_console_errors(visits):
    bad = {p: v["console"] + v["failed"] + ([] if v["loaded"] else ["no load event"]) for p, v in visits.items()}
    bad = {p: problems for p, problems in bad.items() if problems}
    assert not bad, "pages with console errors or failed loads:\n" + json.dumps(bad, indent=1)


@pytest.mark.slow
def test_no_page_requests_anything_outside_localhost(site, visits):
    base = site[0]
    outside = {p: _outside(base, v["requests"]) for p, v in visits.items()}
    outside = {p: u for p, u in outside.items() if u}
    assert not outside, "requests that left the local server:\n" + json.dumps(outside, indent=1)
    assert sum(len(v["requests"]) for v in visits.values()) > 3 * len(visits), "too few requests were seen"


@pytest.mark.slow
def test_math_is_rendered_by_mathjax(visits):
    with_math = [p for p, v in visits.items() if v["math"]]
    assert with_math, "no page of the book has math (the notation table of chapter 0 should)"
    problems = {}
    for page, v in visits.items():
        issues = []
        if v["math"] and not v["mjx"]:
            issues.append(f"{v['math']} math elements but no MathJax output (mjx-container)")
        if v["untypeset"]:
            issues.append(f"math left as TeX: {v['untypeset'][:5]}")
        if v["mathErrors"]:
            issues.append(f"MathJax errors: {v['mathErrors'][:5]}")
        if v["raw"]:
            issues.append(f"raw $$ in the text: {v['raw'][:5]}")
        if issues:
            problems[page] = issues
    assert not problems, "math not rendered:\n" + json.dumps(problems, indent=1)


@pytest.mark.slow
def test_images_load_with_a_size(visits):
    broken = {p: [i for i in v["images"] if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
              for p, v in visits.items()}
    broken = {p: imgs for p, imgs in broken.items() if imgs}
    assert not broken, "images that did not load or have no size:\n" + json.dumps(broken, indent=1)
    figures = [i for v in visits.values() for i in v["images"] if "_images/" in (i["src"] or "")]
    chapters = [p for p in visits if re.match(r"book/ch(?!00)\d\d_", p)]
    if chapters:
        assert figures, f"chapters {chapters} show no computed figure"


def diagram_problems(visits: dict[str, dict], registry=None) -> list[str]:
    """Each diagram of attnlab/course/diagrams.py on its chapter's page: one <img> in the <figure> of
    its name, loaded, with alt text and a caption."""
    problems = []
    for name, diagram in (registry or diagrams.DIAGRAMS).items():
        page = f"book/{diagram.chapter}.html"
        if page not in visits:
            problems.append(f"{name}: no page {page}")
            continue
        found = [i for i in visits[page]["images"] if i.get("figure") == diagram.figure]
        if len(found) != 1:
            problems.append(f"{name}: {len(found)} images in <figure id={diagram.figure!r}> on {page}, expected 1")
            continue
        image = found[0]
        if not (image["complete"] and image["width"] > 0 and image["height"] > 0):
            problems.append(f"{name}: {image['src']} did not load on {page}")
        if not (image["src"] or "").endswith(".svg"):
            problems.append(f"{name}: {image['src']} is not the SVG")
        if len((image["alt"] or "").strip()) < 40:
            problems.append(f"{name}: alt text {image['alt']!r} on {page}")
        if not image["caption"]:
            problems.append(f"{name}: no caption on {page}")
    return problems


@pytest.mark.slow
def test_every_diagram_is_on_its_page_loaded_with_alt_text_and_caption(visits):
    problems = diagram_problems(visits)
    assert not problems, "diagrams missing or broken:\n" + "\n".join(problems)


@pytest.mark.slow
def test_every_local_link_resolves(site, visits):
    base, _, html = site
    missing = {}
    for page, v in visits.items():
        for href in v["links"]:
            if href.startswith(("#", "mailto:", "javascript:")):
                continue
            address = urllib.parse.urljoin(v["href"], href)  # the page as shown (after any redirect)
            if not address.startswith(base):
                continue
            path = urllib.parse.unquote(urllib.parse.urlparse(address).path).lstrip("/")
            target = html / path
            if not (target.is_file() or (target / "index.html").is_file()):
                missing.setdefault(page, []).append(href)
    assert not missing, "links to files that are not in the built site:\n" + json.dumps(missing, indent=1)


@pytest.mark.slow
def test_no_link_points_at_a_host_that_does_not_exist(visits):
    repo = repository_url()
    problems = {}
    for page, v in visits.items():
        external = [h for h in v["links"] if urllib.parse.urlparse(h).scheme in ("http", "https")]
        bad = [h for h in external if PLACEHOLDER.search(urllib.parse.urlparse(h).netloc + urllib.parse.urlparse(h).path)]
        if not repo:  # no repository configured: no launch, repository or issues links at all
            bad += [h for h in external if any(host in h for host in LAUNCH_HOSTS) or "user-redirect/git-pull" in h]
            bad += [h for h in v["launch"]]
        else:
            bad += [h for h in v["launch"] if repo.removeprefix("https://github.com/") not in h]
        if bad:
            problems[page] = bad
    assert not problems, "links to hosts or repositories that do not exist:\n" + json.dumps(problems, indent=1)


# ----------------------------------------------------------------------------------------------
# Downloads and search

def _fetch_notebook(base: str, page: str, href: str):
    url = urllib.parse.urljoin(base + page, href)
    with urllib.request.urlopen(url) as answer:
        notebook = nbformat.reads(answer.read().decode("utf-8"), as_version=4)
    nbformat.validate(notebook)
    return notebook


@pytest.mark.slow
def test_every_chapter_offers_its_notebook_as_ipynb(site, visits):
    base = site[0]
    chapters = [p for p in visits if re.match(r"book/(ch\d\d|app[A-Z])_", p)]
    assert chapters, f"no chapter pages among {sorted(visits)}"
    missing = [p for p in chapters if re.match(r"book/ch", p) and not visits[p]["notebookButton"]]
    assert not missing, f"chapters without the .ipynb download button: {missing}"
    for page in chapters:
        if visits[page]["notebookButton"]:
            notebook = _fetch_notebook(base, page, visits[page]["notebookButton"])
            code = [c for c in notebook.cells if c.cell_type == "code"]
            assert code, f"{page}: the downloaded notebook has no code cell"


@pytest.mark.slow
def test_chapters_with_an_exercise_offer_the_exercise_notebook(site, visits):
    """A chapter that links its exercise does so as a download of the .ipynb itself, which is valid."""
    base = site[0]
    exercises = sorted(p.name for p in (ROOT / "exercises").glob("ps*") if p.is_dir())
    offered = {}
    for page, v in visits.items():
        for href in v["links"]:
            if href.split("?")[0].endswith(".ipynb") and "_downloads/" in href:
                notebook = _fetch_notebook(base, page, href)
                assert notebook.cells, f"{page}: exercise notebook {href} is empty"
                offered.setdefault(Path(href).stem, []).append(page)
    for page, v in visits.items():
        inline = sorted({h for h in v["links"] if h.endswith(".ipynb") and "_downloads/" in h})
        assert len(v["exerciseDownloads"]) == len(set(v["exerciseDownloads"])), f"{page}: duplicated exercise menu"
        assert sorted(v["exerciseDownloads"]) == inline, (
            f"{page}: the header's exercise menu {v['exerciseDownloads']} differs from the page's exercise links {inline}")
    linked = [name for name in exercises if name in offered]
    assert len(linked) == len(exercises), (
        f"exercises without a download link in any chapter: {sorted(set(exercises) - set(linked))} "
        f"(link each from its chapter as a download: [`psNN_topic.ipynb`](path:../exercises/psNN_topic/psNN_topic.ipynb)); offered: {offered}")


@pytest.mark.slow
def test_search_finds_a_word_of_chapter_4(site, visits):
    base, browser, html = site
    assert CHAPTER_4 in visits, f"chapter 4 ({CHAPTER_4}) is not in the built book: {sorted(visits)}"
    chapter_text = (html / CHAPTER_4).read_text(encoding="utf-8").lower()
    assert SEARCH_WORD in chapter_text, f"'{SEARCH_WORD}' does not occur in {CHAPTER_4}"
    report = browser.open(f"{base}search.html?q={SEARCH_WORD}")
    found = browser.evaluate(SEARCH_JS)
    browser.screenshot(SCREENSHOTS / "search.png")
    assert not report.console_errors, report.console_errors
    assert found["summary"] and "finished" in found["summary"].lower(), f"the search did not finish: {found}"
    hits = [h.split("#")[0] for h in found["hits"]]
    assert CHAPTER_4 in hits, f"searching '{SEARCH_WORD}' did not find {CHAPTER_4}; results: {found}"


FIRST_SCREEN_JS = r"""
(() => {
  // the text a reader sees without scrolling: main article elements that start within the window
  const article = document.querySelector("article, main, .bd-article") || document.body;
  window.scrollTo(0, 0);
  const seen = [...article.querySelectorAll("h1, h2, h3, p, li, dt, dd, .admonition, td")]
    .filter(e => { const r = e.getBoundingClientRect(); return r.height > 0 && r.top < window.innerHeight; });
  return [...new Set(seen.map(e => e.innerText))].join("\n");  // a <p> inside an <li> once
})()
"""
# What the landing page says in its first screen: what the course is, who it is for, what a
# learner builds, and how long it takes.
LANDING_PROMISES = {
    "what it is": r"\bcourse\b",
    "who it is for": r"\bwho it is for\b|\bfor[:\s]+(you|programmers|developers|engineers|students|learners|anyone|readers|people)\b|\bprerequisites?\b|\byou need\b",
    "what a learner builds": r"\bwhat you (will )?build\b|\b(build|builds|implement|write|train)\b[^.]*\b(transformer|attention)\b",
    "how long it takes": r"\b\d+(\s*(to|-|–)\s*\d+)?\s*(hours?|h|weeks?|days?|minutes)\b",
}


@pytest.mark.slow
def test_landing_page_says_what_who_what_and_how_long_in_one_screen(site, visits):
    base, browser, html = site
    landing = "book/intro.html"
    assert landing in visits, f"no landing page {landing}"
    browser.open(base + landing)
    text = browser.evaluate(FIRST_SCREEN_JS)
    missing = [what for what, pattern in LANDING_PROMISES.items() if not re.search(pattern, text, re.I | re.S)]
    assert not missing, f"the first screen of {landing} does not say {missing}; it shows:\n{text}"


@pytest.mark.slow
def test_screenshots_are_saved(visits):
    shots = [SCREENSHOTS / (p.replace("/", "_").removesuffix(".html") + ".png") for p in SCREENSHOT_PAGES if p in visits]
    assert len(shots) >= 2, f"too few of {SCREENSHOT_PAGES} are built to photograph"
    for shot in shots:
        assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no PNG at {shot}"
        assert shot.stat().st_size > 20_000, f"{shot} is suspiciously small ({shot.stat().st_size} bytes): a blank page?"


# ----------------------------------------------------------------------------------------------
# The Chinese edition (_build/html/zh/, tools/i18n.py): a few pages through the same checks, its search,
# its font, and the language switch between the editions.

ZH = "zh/"
ZH_PAGES = ["book/intro.html", "book/ch02_attention.html", CHAPTER_4]  # the landing page, math and figures
ZH_SEARCH_WORD = "注意力"  # attention: inside longer words (多头注意力) and sentences, never between spaces
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
SWITCH = ".edition-switch a.edition-switch-link"
PAGE_FACTS_JS = r"""
(() => {
  const link = document.querySelector(".edition-switch a.edition-switch-link");
  const box = link ? link.getBoundingClientRect() : null;
  return {lang: document.documentElement.lang, title: (document.querySelector("article h1") || {}).innerText || "",
          switchText: link ? link.innerText.trim() : null, switchHref: link ? link.href : null,
          switchVisible: !!box && box.width > 0 && box.height > 0 && box.top >= 0 && box.top < 150};
})()
"""


@pytest.fixture(scope="module")
def zh_visits(site) -> dict[str, dict]:
    base, browser, html = site
    found = {}
    for page in ZH_PAGES:
        assert (html / ZH / page).is_file(), f"the Chinese edition lacks {page}"
        found[page] = inspect(browser, base + ZH + page)
        found[page].update(browser.evaluate(PAGE_FACTS_JS))
        if page == CHAPTER_4:
            browser.screenshot(SCREENSHOTS / "zh_book_ch04_multihead.png")
    return found


@pytest.mark.slow
def test_zh_pages_load_in_chinese_with_math_figures_and_no_console_errors(site, zh_visits):
    base = site[0]
    problems = {}
    for page, v in zh_visits.items():
        issues = v["console"] + v["failed"] + ([] if v["loaded"] else ["no load event"])
        issues += [f"request outside the local server: {u}" for u in _outside(base, v["requests"])]
        if v["lang"] != "zh-CN":
            issues.append(f'<html lang="{v["lang"]}">, expected zh-CN')
        if not CJK.search(v["title"]):
            issues.append(f"the title {v['title']!r} is not in Chinese")
        if v["untypeset"] or v["mathErrors"] or v["raw"] or (v["math"] and not v["mjx"]):
            issues.append(f"math not rendered: {v['untypeset'][:3]} {v['mathErrors'][:3]} {v['raw'][:3]}")
        issues += [f"image not loaded: {i['src']}" for i in v["images"]
                   if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
        if issues:
            problems[page] = issues
    assert not problems, "Chinese pages with problems:\n" + json.dumps(problems, indent=1, ensure_ascii=False)
    assert zh_visits["book/ch02_attention.html"]["mjx"], "chapter 2 of the Chinese edition shows no typeset math"
    figures = [i for i in zh_visits["book/ch02_attention.html"]["images"] if "_images/" in (i["src"] or "")]
    assert figures, "chapter 2 of the Chinese edition shows no computed figure"


@pytest.mark.slow
def test_zh_text_is_drawn_with_a_chinese_font(site, zh_visits):
    """No boxes (tofu) for Chinese characters: fontconfig has a font for zh-CN (Noto Sans CJK, installed
    with Chromium by tools/system.py when we are root), and Chromium draws chapter 4's title with it."""
    import os

    from system import cjk_font_family, find_or_install_cjk_font

    fonts, reason = find_or_install_cjk_font()
    if not fonts and os.geteuid() != 0:
        pytest.skip(f"no font for Chinese, so the Chinese pages would show boxes: {reason}")
    assert fonts, f"no font for Chinese: {reason}"
    family = cjk_font_family()
    assert family, "fc-match :lang=zh-cn picks a font without Chinese characters (Chromium would draw boxes)"
    base, browser, _ = site
    browser.open(base + ZH + CHAPTER_4)
    title = browser.evaluate("document.querySelector('article h1').firstChild.textContent")
    used = browser.platform_fonts("article h1")
    chinese = {f.split(":")[0] for f in cjk_families()}
    drawn = sum(f["glyphCount"] for f in used if f["familyName"] in chinese)
    assert drawn >= len(CJK.findall(title)) > 0, (
        f"chapter 4's title {title!r} is drawn with {used}, not with a Chinese font ({sorted(chinese)[:5]})")


def cjk_families() -> list[str]:
    import subprocess

    from system import CJK_LANG

    listed = subprocess.run(["fc-list", f":lang={CJK_LANG}", "family"], capture_output=True, text=True).stdout
    return [name for line in listed.splitlines() for name in line.split(",") if name]


@pytest.mark.slow
def test_zh_search_finds_a_chinese_word_of_chapter_4(site, zh_visits):
    base, browser, html = site
    assert ZH_SEARCH_WORD in (html / ZH / CHAPTER_4).read_text(encoding="utf-8")
    report = browser.open(f"{base}{ZH}search.html?q={urllib.parse.quote(ZH_SEARCH_WORD)}")
    found = browser.evaluate(SEARCH_JS)
    browser.screenshot(SCREENSHOTS / "zh_search.png")
    assert not report.console_errors, report.console_errors
    assert found["summary"] and found["hits"], f"the search did not finish or found nothing: {found}"
    hits = [h.split("#")[0].split("?")[0] for h in found["hits"]]
    assert CHAPTER_4 in hits, f"searching {ZH_SEARCH_WORD} did not find {CHAPTER_4}; results: {found}"


@pytest.mark.slow
def test_the_language_switch_navigates_between_the_editions(site, zh_visits):
    base, browser, html = site
    for page, v in zh_visits.items():
        assert v["switchVisible"] and v["switchText"] == "English", f"zh/{page}: no visible switch to English: {v}"
    browser.open(base + CHAPTER_4)
    english = browser.evaluate(PAGE_FACTS_JS)
    assert english["switchVisible"] and english["switchText"] == "中文", f"{CHAPTER_4}: no visible switch to 中文: {english}"
    report = browser.click(SWITCH)
    assert report.loaded and report.url == base + ZH + CHAPTER_4, f"中文 on {CHAPTER_4} went to {report.url}"
    assert browser.evaluate("document.documentElement.lang") == "zh-CN"
    report = browser.click(SWITCH)
    assert report.loaded and report.url == base + CHAPTER_4, f"English on zh/{CHAPTER_4} went to {report.url}"
    assert browser.evaluate("document.documentElement.lang") == "en"


# ----------------------------------------------------------------------------------------------
# The checks above can fail: a deliberately broken page trips each of them.

BROKEN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>broken</title>
<link rel="icon" href="data:,"></head><body>
<p>Raw math that nobody typeset: $$a^2 + b^2$$</p>
<span class="math">\\(x\\)</span>
<img src="https://cdn.example.org/figure.png"><figure id="fig-broken"><img src="missing.png"></figure>
<script>console.error("boom");</script>
</body></html>"""


def test_the_browser_checks_catch_a_broken_page(chromium, tmp_path):
    (tmp_path / "broken.html").write_text(BROKEN_PAGE)
    with StaticServer(tmp_path) as base, Browser(chromium) as browser:
        facts = inspect(browser, base + "broken.html")
    assert any("boom" in m for m in facts["console"]), facts["console"]
    assert _outside(base, facts["requests"]) == ["https://cdn.example.org/figure.png"], facts["requests"]
    assert any("missing.png" in f and "404" in f for f in facts["failed"]), facts["failed"]
    assert facts["raw"] and "$$" in facts["raw"][0], facts
    assert facts["math"] == 1 and facts["mjx"] == 0 and facts["untypeset"], facts
    assert sorted(i["width"] for i in facts["images"]) == [0, 0], facts["images"]
    # a diagram's figure that did not load, has no alt text and no caption is named for each
    broken = {"broken": diagrams.Diagram(diagrams.masks, (1, 1), "fig-broken", "broken")}
    problems = diagram_problems({"book/broken.html": facts}, broken)
    assert [p.split(":")[0] for p in problems] == ["broken"] * 4, problems
    assert "did not load" in problems[0] and "alt text None" in problems[2] and "no caption" in problems[3], problems
    assert diagram_problems({}, broken) == ["broken: no page book/broken.html"]


# ----------------------------------------------------------------------------------------------
# Publishing: workflows, the repository address in one place, launch links for a fork

WORKFLOWS = ROOT / ".github" / "workflows"
PINNED = re.compile(r"^\s*-?\s*uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40})\s+#\s*v\d", re.M)
USES = re.compile(r"^\s*-?\s*uses:\s*(\S+)", re.M)


def test_workflow_actions_are_pinned_by_commit():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"book.yml", "test.yml"}, files
    for workflow in files:
        text = workflow.read_text()
        uses = USES.findall(text)
        pinned = PINNED.findall(text)
        assert uses and len(pinned) == len(uses), f"{workflow.name}: actions not pinned by full SHA + version comment: {uses}"


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_test_workflow_runs_make_test_on_pull_requests():
    workflow = yaml.safe_load((WORKFLOWS / "test.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in triggers, triggers
    runs = " ".join(step.get("run", "") for step in _steps(workflow))
    assert "make test" in runs, runs
    job = next(iter(workflow["jobs"].values()))
    assert "3.11" in str(job.get("container", "")) + str(_steps(workflow)), "tests must run on Python 3.11"


def test_book_workflow_builds_with_the_cache_and_deploys_to_pages():
    workflow = yaml.safe_load((WORKFLOWS / "book.yml").read_text())
    steps = _steps(workflow)
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "make book" in runs, runs
    cache = [s for s in steps if s.get("uses", "").startswith("actions/cache@")
             and "_build/.jupyter_cache" in s["with"]["path"]]
    assert cache, "the execution cache _build/.jupyter_cache is not cached"
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert upload and upload[0]["with"]["path"] == "_build/html", upload
    assert "actions/deploy-pages" in uses, uses
    deploy = workflow["jobs"]["deploy"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}, deploy["permissions"]
    assert deploy["needs"] == "build"


def test_repository_address_is_set_in_one_place_and_documented():
    config = (ROOT / "_config.yml").read_text()
    parsed = yaml.safe_load(config)
    theme = parsed["sphinx"]["config"].get("html_theme_options", {})
    assert "repository_url" not in theme, "a second repository address in sphinx.config.html_theme_options"
    assert parsed["sphinx"].get("recursive_update") is True, (
        "without sphinx.recursive_update, sphinx.config.html_theme_options replaces the repository and launch settings")
    assert "url" in parsed["repository"], parsed["repository"]
    readme = (ROOT / "README.md").read_text()
    assert "repository.url" in readme and "_config.yml" in readme, "README does not tell a fork where to set its address"


class _App:
    """The few attributes of a Sphinx app that book/_ext/notebook_links.py reads."""

    def __init__(self, repository: str, launch: dict):
        self.config = type("Config", (), {})()
        self.config.html_theme_options = {"repository_url": repository, "repository_branch": "main",
                                          "launch_buttons": dict(launch)}


def test_launch_links_open_the_exercise_notebook_itself_only_with_a_repository():
    import sys
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import notebook_links
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))
    launch = yaml.safe_load((ROOT / "_config.yml").read_text())["launch_buttons"]
    path = "exercises/ps02_attention/ps02_attention.ipynb"

    fork = _App("https://github.com/someone/attention-course", launch)
    notebook_links.launch_off_without_repository(fork, fork.config)
    urls = dict((provider, url) for provider, _, url in notebook_links.launch_urls(fork, path))
    assert urls, f"no launch link although a repository is configured (launch_buttons: {launch})"
    for provider, url in urls.items():
        assert "someone/attention-course" in url and path in url, (provider, url)
    if "Binder" in urls:
        assert urls["Binder"].startswith("https://mybinder.org/v2/gh/someone/attention-course/main?urlpath=")
    if "Colab" in urls:
        assert urls["Colab"] == f"https://colab.research.google.com/github/someone/attention-course/blob/main/{path}"
    # chapter launch buttons of the theme: Binder/JupyterHub stay, Colab (cannot open Markdown) goes
    assert not fork.config.html_theme_options["launch_buttons"].get("colab_url")

    alone = _App("", launch)
    notebook_links.launch_off_without_repository(alone, alone.config)
    assert notebook_links.launch_urls(alone, path) == []
    providers = alone.config.html_theme_options["launch_buttons"]
    assert not any(providers.get(key) for key in notebook_links.PROVIDERS), providers


FORK_CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# A chapter

```{code-cell} ipython3
1 + 1
```

Download the exercise [`ps02_attention.ipynb`](path:../exercises/ps02_attention/ps02_attention.ipynb).
"""


@pytest.mark.slow
def test_a_fork_with_a_repository_gets_launch_buttons_that_open_chapters_and_exercises(tmp_path):
    """A strict build of a one-chapter book with this course's launch settings and a repository address."""
    import subprocess
    import sys

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = "https://github.com/someone/attention-course"
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "ch02.md").write_text(FORK_CHAPTER)
    exercise = tmp_path / "exercises" / "ps02_attention" / "ps02_attention.ipynb"
    exercise.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), exercise)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/ch02\n")
    sphinx = config["sphinx"]
    mini = {
        "title": "fork", "only_build_toc_files": True, "exclude_patterns": ["_build", "exercises", ".*"],
        "execute": {"execute_notebooks": "off"},
        "launch_buttons": config["launch_buttons"], "repository": {**config["repository"], "url": repo},
        "html": {key: config["html"][key] for key in ("use_repository_button", "use_issues_button")},
        "sphinx": {"recursive_update": sphinx.get("recursive_update", False),
                   "local_extensions": {"notebook_links": str(ROOT / "book" / "_ext")},
                   "config": {key: sphinx["config"][key] for key in ("html_theme_options", "html_context")}},
    }
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(mini))
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", ".", "-W", "-n", "--keep-going"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    log = result.stdout + result.stderr
    assert result.returncode == 0 and "WARNING: " not in log, f"the fork's strict build failed:\n{log[-4000:]}"

    page = (tmp_path / "_build" / "html" / "book" / "ch02.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+)"', page))
    assert "../_sources/book/ch02.ipynb" in links, "no .ipynb download of the chapter"
    assert (tmp_path / "_build" / "html" / "_sources" / "book" / "ch02.ipynb").is_file()
    assert repo in links, f"no repository button for {repo}"
    path = "exercises/ps02_attention/ps02_attention.ipynb"
    binder = f"https://mybinder.org/v2/gh/someone/attention-course/{config['repository'].get('branch', 'main')}?urlpath="
    assert any(h.startswith(binder) and h.endswith("/book/ch02.md") for h in links), f"no Binder button for the chapter: {links}"
    assert any(h.startswith(binder) and h.endswith(f"/{path}") for h in links), f"no Binder link for the exercise: {links}"
    assert any(h.startswith("https://colab.research.google.com/github/someone/attention-course/blob/")
               and h.endswith(path) for h in links), f"no Colab link for the exercise: {links}"
    assert not any("colab" in h and h.endswith(".md") for h in links), "Colab offered for a Markdown chapter"
    assert any("_downloads/" in h and h.endswith("ps02_attention.ipynb") for h in links), "no exercise download"
