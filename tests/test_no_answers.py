"""The book never hands an answer over before the learner has tried (issue 12).

Graded answers are every object named by a ``#| solution-from:`` line of ``solutions/<a>/<a>.md`` and
every solution cell written by hand between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
(``attnlab.course.release.graded_solutions``). An answer "appears" in a text when its substantive
lines do, by this rule:

- the lines of an answer are the *logical* lines of Python (a statement continued over several
  physical lines is one line) of its **body**: for a function, its body; for a class, every
  method's body and any other class-level statement; for a hand-written cell, what lies between
  the solution markers. Signatures, decorators and docstrings are not body; comments are dropped;
- a line is **trivial**, and not counted, when it is ``pass``, ``...``, ``super().__init__()``, or
  one or two tokens (``return``, ``return 1``, ``raise Error``), or a statement that only calls a
  method without arguments, PyTorch's idioms that every training loop writes the same way
  (``optimizer.step()``, ``model.eval()``), or when it holds nothing but keywords, names, commas,
  colons and brackets, with no call, subscript, attribute, operator or literal: ``return out``,
  ``return output, weights``, ``else:``, ``)``, ``if cache is not None:``;
- a line is **common vocabulary**, and not counted either, when the course library writes it
  outside every graded object (``loss.backward()`` in a training loop of the experiments,
  ``self.dropout = nn.Dropout(dropout)`` in ``PositionalEncoding``): the book shows that code
  legitimately, and a line it shares with an answer cannot give the answer away. The bug catalogue
  ``attnlab/course/bugs.py`` is not vocabulary: its entries are near-copies of answers. Every other
  line is **substantive**;
- a line is **found** in a text when its sequence of tokens occurs in the text's tokens. Tokens
  are dotted names and numbers (``self.w_q``, ``0.5``) and single punctuation characters;
  whitespace and line breaks do not matter, so a statement wrapped over several lines is found,
  and a dotted name is one token (``model.train()`` is not found in ``state.model.train()``). A text is a
  file of the built site read as a reader would see it: an HTML page without its tags (Pygments
  splits code into spans), every string of a notebook's JSON, any other text file as it is.

The tests:

- in the default edition, for every answer, fewer than half of its substantive lines are found in
  the files of the pages up to and including its exercise's chapter (toc order; an object graded by
  several assignments counts from the first) together with the files that belong to no page
  (search index, theme files); a page's files are its HTML, its ``_sources/`` and the ``_downloads/``
  it links. Copies of packages (MathJax in ``mathjax/``, the theme's files in ``_static/``) are not read;
- the same bound holds for the given cells of each assignment's own released notebook
  ``exercises/<a>/<a>.ipynb`` (a later assignment may give an earlier one's answer as code);
- in the edition without solutions (``course_solutions: false``), no substantive line of any
  answer is found anywhere in the site, and no notebook is offered for download;
- the solutions appendix of the default edition contains every substantive line of every answer
  (which also shows that the rule finds code that a page prints in full), and the rule applied to
  a page that prints a reference body reports it.
"""
from __future__ import annotations

import ast
import html
import inspect
import io
import json
import keyword
import re
import textwrap
import tokenize
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest
import yaml

from attnlab.course import release
from i18n import edition_folders  # tools/i18n.py (tests/conftest.py puts tools/ on the path)

ROOT = Path(__file__).resolve().parents[1]
TOKEN = re.compile(r"\w+(?:\.\w+)*|[^\w\s]")
NAME = re.compile(r"[^\W\d]\w*$")
TRIVIAL = {"pass", ". . .", "return", "continue", "break"}
ARGLESS_CALL = re.compile(r"^[^\W\d]\w*(?:\.\w+)+ \( \)$")  # optimizer.step ( )
SUPER_INIT = re.compile(r"^super \( .*\) \. __init__ \( \)$|^super \( \) \. __init__ \( \)$")
TEXT_SUFFIXES = {".html", ".txt", ".md", ".ipynb", ".js", ".json", ".css", ".py", ".svg", ".xml", ".yml", ".yaml"}
# copies of packages (MathJax, the theme's and Sphinx's scripts and styles), not built from the course
SKIPPED = ("mathjax/", "_static/")


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------


def canonical(text: str) -> str:
    """Tokens separated by one space: whitespace, line breaks and HTML spans no longer matter."""
    return " ".join(TOKEN.findall(text))


def trivial(line: str) -> bool:
    """A canonical line with nothing to give away (see the module docstring)."""
    tokens = line.split()
    if line in TRIVIAL or SUPER_INIT.match(line) or len(tokens) <= 2 or ARGLESS_CALL.match(line):
        return True
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if NAME.match(token):
            if following in ("(", "[", ".") and not keyword.iskeyword(token):
                return False  # a call, a subscript or an attribute
        elif token not in (",", ":", "(", ")", "[", "]", "{", "}"):
            return False  # an operator, a literal, a dot
    return True


def logical_lines(source: str) -> list[tuple[int, str]]:
    """(first row, canonical text without comments) of each logical line of Python source."""
    lines, current, first, end = [], [], None, None
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in skip:
            continue
        if tok.type == tokenize.NEWLINE:
            if current:
                lines.append((first, canonical("".join(current))))
            current, first, end = [], None, None
            continue
        first = tok.start[0] if first is None else first
        # tokens written side by side stay side by side: `x.grad` is one dotted name, `x . grad` is not
        current.append(tok.string if tok.start == end else " " + tok.string)
        end = tok.end
    if current:
        lines.append((first, canonical("".join(current))))
    return lines


def _docstring_rows(node) -> set[int]:
    body = getattr(node, "body", [])
    if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return set(range(body[0].lineno, body[0].end_lineno + 1))
    return set()


def _body_rows(node) -> set[int]:
    """Rows of the body of a def, or of every method and other statement of a class, without docstrings."""
    rows: set[int] = set()
    for child in node.body:
        if isinstance(node, ast.ClassDef) and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            rows |= _body_rows(child)
        else:
            rows |= set(range(child.lineno, child.end_lineno + 1))
    return rows - _docstring_rows(node)


def object_lines(source: str) -> list[str]:
    """The substantive lines of a function's or class's body."""
    source = textwrap.dedent(source)
    rows = _body_rows(ast.parse(source).body[0])
    return list(dict.fromkeys(text for row, text in logical_lines(source) if row in rows and not trivial(text)))


def cell_lines(source: str) -> list[str]:
    """The substantive lines between the solution markers of a hand-written answer cell."""
    source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    rows, inside = set(), False
    for number, line in enumerate(source.splitlines(), start=1):
        if line.strip() == release.BEGIN:
            inside = True
        elif line.strip() == release.END:
            inside = False
        elif inside:
            rows.add(number)
    try:  # headers and docstrings of defs written entirely inside the markers are not body
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                rows -= set(range(node.lineno, node.body[0].lineno)) | _docstring_rows(node)
    except SyntaxError:
        pass
    return list(dict.fromkeys(text for row, text in logical_lines(source) if row in rows and not trivial(text)))


def found(line: str, text: str) -> bool:
    """Whether the canonical ``line`` occurs in the canonical ``text`` (padded with spaces)."""
    return f" {line} " in text


@lru_cache(1)
def vocabulary() -> frozenset[str]:
    """The substantive lines that the course library writes outside every graded object (the bug
    catalogue excluded: its entries are near-copies of answers)."""
    graded = {s.name for a in release.assignments() for s in release.graded_solutions(a) if s.from_library}
    lines: set[str] = set()
    package = ROOT / "attnlab"
    for path in sorted(package.rglob("*.py")):
        if path == package / "course" / "bugs.py":
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        source = path.read_text(encoding="utf-8")
        excluded: set[int] = set()
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and f"{module}.{node.name}" in graded:
                first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                excluded |= set(range(first, node.end_lineno + 1))
        lines |= {text for row, text in logical_lines(source) if row not in excluded and not trivial(text)}
    return frozenset(lines)


# --------------------------------------------------------------------------------------------
# The answers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    name: str  # dotted name of a library object, or "<assignment>:<grade_id>" of a hand-written cell
    first: str  # the first assignment that grades it
    graded_by: tuple[str, ...]  # every assignment that grades it
    lines: tuple[str, ...]  # its substantive lines
    all_lines: tuple[str, ...]  # its non-trivial lines, common vocabulary included (the appendix prints them all)


@lru_cache(1)
def answers() -> tuple[Answer, ...]:
    by_name: dict[str, tuple[list[str], list[str]]] = {}
    for assignment in release.assignments():
        for solution in release.graded_solutions(assignment):
            if solution.from_library:
                name, lines = solution.name, object_lines(solution.source)
            else:
                name, lines = f"{assignment}:{solution.name}", cell_lines(solution.source)
            by_name.setdefault(name, ([], lines))[0].append(assignment)
    common = vocabulary()
    return tuple(Answer(name, graded[0], tuple(graded), tuple(l for l in lines if l not in common), tuple(lines))
                 for name, (graded, lines) in by_name.items() if any(l not in common for l in lines))


def test_every_assignment_has_answers_with_substantive_lines():
    found_answers = answers()
    assignments = {a for answer in found_answers for a in answer.graded_by}
    assert assignments == set(release.assignments()), f"assignments without a graded answer: " \
                                                      f"{set(release.assignments()) - assignments}"
    assert any(a.name == "attnlab.attention.scaled_dot_product_attention" for a in found_answers)


# --------------------------------------------------------------------------------------------
# The rule can fail, and ignores what it should
# --------------------------------------------------------------------------------------------


def test_rule_reports_a_page_that_prints_a_reference_body():
    """A page that literalincludes a body (highlighted by Pygments into spans) gives all of it away;
    a page with its skeleton gives nothing."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    from attnlab.attention import scaled_dot_product_attention
    from attnlab.multihead import MultiHeadAttention

    for obj in (scaled_dot_product_attention, MultiHeadAttention):
        lines = object_lines(inspect.getsource(obj))
        assert len(lines) >= 5, lines
        page = "<html><body><p>Here is the function you implement:</p>" + \
               highlight(inspect.getsource(obj), PythonLexer(), HtmlFormatter()) + "</body></html>"
        text = read_html(page)
        assert all(found(line, text) for line in lines), [line for line in lines if not found(line, text)]
        skeleton = read_html(highlight(release.skeleton_source(obj), PythonLexer(), HtmlFormatter()))
        assert not [line for line in lines if found(line, skeleton)]


def test_skeleton_keeps_signatures_and_docstrings_only():
    """What a chapter shows before the exercise: valid Python, every signature and docstring, no body."""
    for answer in answers():
        if ":" in answer.name:
            continue  # a hand-written cell: no library object to show
        module, _, name = answer.name.rpartition(".")
        obj = getattr(__import__(module, fromlist=[name]), name)
        skeleton = release.skeleton_source(obj)
        tree = ast.parse(skeleton)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = [stmt for stmt in node.body if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))]
                assert not body, f"{answer.name}: {node.name} keeps a body in its skeleton"
        assert not object_lines(skeleton), answer.name
        source = ast.parse(textwrap.dedent(inspect.getsource(obj)))

        def signatures(node):  # the object's own signature, or its methods' (nested defs are body)
            if isinstance(node, ast.ClassDef):
                return {(n.name, ast.unparse(n.args), ast.get_docstring(n)) for n in node.body
                        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            return {(node.name, ast.unparse(node.args), ast.get_docstring(node))}

        assert signatures(source.body[0]) == signatures(tree.body[0]), answer.name
        assert ast.get_docstring(source.body[0]) == ast.get_docstring(tree.body[0]), answer.name


def test_rule_on_examples():
    assert object_lines('''
def f(x, y):
    """Docstring: return x."""
    # a comment
    out = (x
           + y)  # one logical line
    if out is None:
        pass
    return out
''') == ["out = ( x + y )"]
    assert object_lines('''
class C(nn.Module):
    """Doc."""

    def __init__(self, d):
        """Doc."""
        super().__init__()
        self.w = nn.Linear(d, d)

    def forward(self, x):
        return self.w(x)
''') == ["self.w = nn.Linear ( d , d )", "return self.w ( x )"]
    assert cell_lines('### BEGIN SOLUTION\nanswer = 8.0  # why\n### END SOLUTION') == ["answer = 8.0"]
    assert cell_lines('def g(n):\n    """Doc."""\n    ### BEGIN SOLUTION\n    return n\n    ### END SOLUTION') == []
    for line in ("return output , weights", "else :", ")", "if cache is not None :", "pass", ". . .",
                 "super ( ) . __init__ ( )", "return", "return 1", "optimizer.step ( )", "model.eval ( )"):
        assert trivial(line), line
    for line in ("return - 1", "check_mask ( mask )", "model.train ( True )", "return loss.item ( )",
                 "return self.w ( x )", "y = x [ 0 ]", "x = y + 1"):
        assert not trivial(line), line
    text = " " + canonical("state.model.train()\nloss.backward(\n)  # done.\nmodel.train()") + " "
    assert found("loss.backward ( )", text) and found("model.train ( )", text)
    assert not found("model.train ( )", " " + canonical("state.model.train()") + " ")


# --------------------------------------------------------------------------------------------
# Reading the built site
# --------------------------------------------------------------------------------------------


PYGMENTS_COMMENT = re.compile(r'<span class="(?:c|c1|ch|cm|cp|cpf|cs)">.*?</span>', re.S)


def read_html(page: str) -> str:
    """The text a reader sees, without the comments of highlighted code (comments are not answers)."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    text = PYGMENTS_COMMENT.sub(" ", text)
    return " " + canonical(html.unescape(re.sub(r"<[^>]+>", "", text))) + " "


def without_comments(code: str) -> str:
    """Python code without its comments (as it was when it does not tokenize, e.g. IPython magics)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return code
    out, end = [], None
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            continue
        out.append(tok.string if tok.start == end else " " + tok.string)
        end = tok.end
    return "".join(out)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def read_file(path: Path) -> str:
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".html":
        return read_html(raw)
    if path.suffix == ".ipynb":
        try:
            nb = json.loads(raw)
        except json.JSONDecodeError:
            return " " + canonical(raw) + " "
        sources = []
        for cell in nb.get("cells", []):
            source = cell.get("source", "")
            source = source if isinstance(source, str) else "".join(source)
            sources.append(without_comments(source) if cell.get("cell_type") == "code" else source)
            sources += _strings(cell.get("outputs", []))
        return " " + " | ".join(canonical(s) for s in sources) + " "
    return " " + canonical(raw) + " "


def toc_pages() -> list[str]:
    """Docnames in reading order, from _toc.yml (root first)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            for part in entry.get("parts", []) or []:
                walk(part.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [page.removesuffix(".md") for page in pages]


class Site:
    """The text files of a built HTML site, grouped by the page they belong to."""

    def __init__(self, html_root: Path, language: str = "en"):
        self.root = html_root
        self.language = language
        self.pages = toc_pages()
        self.files: dict[str, str] = {}
        # another edition in a folder of this one (the Chinese edition, zh/, in the English site) is a site of its own
        others = tuple(f"{folder}/" for folder in edition_folders())
        for path in sorted(html_root.rglob("*")):
            rel = path.relative_to(html_root).as_posix()
            if path.is_file() and path.suffix in TEXT_SUFFIXES and not rel.startswith(SKIPPED + others):
                self.files[rel] = read_file(path)
        self.owner: dict[str, str] = {}  # file -> the page it belongs to
        for page in self.pages:
            html_file = f"{page}.html"
            if html_file not in self.files:
                continue
            self.owner[html_file] = page
            for rel in self.files:
                if rel.startswith(f"_sources/{page}.") or rel == f"_sources/{page}":
                    self.owner[rel] = page
            raw = (html_root / html_file).read_text(encoding="utf-8")
            for href in re.findall(r'href="([^"#?]*_downloads/[^"#?]+)"', raw):
                target = (Path(html_file).parent / html.unescape(href)).as_posix()
                target = re.sub(r"[^/]+/\.\./", "", target)  # book/../_downloads/x -> _downloads/x
                while "/../" in target:
                    target = re.sub(r"[^/]+/\.\./", "", target)
                self.owner.setdefault(target, page)

    def text_until(self, page: str | None) -> str:
        """The files of the pages up to and including ``page`` and the files of no page (all files: None)."""
        allowed = set(self.pages if page is None else self.pages[: self.pages.index(page) + 1])
        return "\n".join(text for rel, text in self.files.items()
                         if page is None or self.owner.get(rel) is None or self.owner[rel] in allowed)

    def where(self, line: str, page: str | None) -> list[str]:
        allowed = set(self.pages if page is None else self.pages[: self.pages.index(page) + 1])
        return [rel for rel, text in self.files.items()
                if (page is None or self.owner.get(rel) is None or self.owner[rel] in allowed) and found(line, text)]


def chapter_page(assignment: str) -> str:
    chapter = release.chapter_of(assignment)
    assert chapter, f"{assignment} has no chapter (book/<label>_<topic>.md)"
    return chapter.removesuffix(".md")


# --------------------------------------------------------------------------------------------
# The released notebooks (no build needed)
# --------------------------------------------------------------------------------------------


def test_released_notebooks_do_not_give_their_own_answers():
    """The cells of exercises/<a>/<a>.ipynb (given code; the answer cells are emptied by the release)
    hold fewer than half of the substantive lines of each answer that assignment grades."""
    problems = []
    for assignment in release.assignments():
        path = ROOT / "exercises" / assignment / f"{assignment}.ipynb"
        nb = nbformat.read(path, as_version=4)
        text = " " + " | ".join(canonical(without_comments(cell.source) if cell.cell_type == "code" else cell.source)
                                for cell in nb.cells) + " "
        for answer in answers():
            if assignment not in answer.graded_by:
                continue
            hits = [line for line in answer.lines if found(line, text)]
            if 2 * len(hits) >= len(answer.lines):
                problems.append(f"{path.relative_to(ROOT)} gives {len(hits)} of the {len(answer.lines)} lines of "
                                f"{answer.name}, e.g. {hits[:3]}")
    assert not problems, "released notebooks that hold their own answers:\n" + "\n".join(problems)


# --------------------------------------------------------------------------------------------
# The built editions
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["en", "zh_CN"])
def default_site(request) -> Site:
    """Each edition as it is published: the English site, and the Chinese one in its folder."""
    if request.param == "en":
        return Site(request.getfixturevalue("built_book"))
    return Site(request.getfixturevalue("built_zh_book"), "zh_CN")


@pytest.fixture(scope="module", params=["en", "zh_CN"])
def site_without_solutions(request) -> Site:
    """Each edition built with the one setting ``course_solutions: false``."""
    if request.param == "en":
        return Site(request.getfixturevalue("built_book_without_solutions"))
    return Site(request.getfixturevalue("built_zh_book_without_solutions"), "zh_CN")


@pytest.mark.slow
def test_default_edition_gives_no_answer_before_its_exercise(default_site):
    problems = []
    texts: dict[str, str] = {}
    for answer in answers():
        page = chapter_page(answer.first)
        text = texts.setdefault(page, default_site.text_until(page))
        hits = [line for line in answer.lines if found(line, text)]
        if 2 * len(hits) >= len(answer.lines):
            where = sorted({f for line in hits for f in default_site.where(line, page)})
            problems.append(f"{answer.name} (exercise {answer.first}, chapter {page}): {len(hits)} of "
                            f"{len(answer.lines)} substantive lines published by then, in {where}: {hits[:4]}")
    assert not problems, "answers published before their exercise:\n" + "\n".join(problems)


@pytest.mark.slow
def test_solutions_appendix_holds_every_answer(default_site):
    """Appendix C of the default edition prints every substantive line of every answer."""
    appendix = [p for p in default_site.pages if p.endswith("_solutions")]
    assert len(appendix) == 1, f"one solutions appendix in _toc.yml, found {appendix}"
    text = default_site.files[f"{appendix[0]}.html"]
    missing = [f"{answer.name}: {line}" for answer in answers() for line in answer.all_lines if not found(line, text)]
    assert not missing, "lines missing from the solutions appendix:\n" + "\n".join(missing[:20])
    first, last = default_site.pages.index(appendix[0]), max(default_site.pages.index(chapter_page(a))
                                                               for a in release.assignments())
    assert first > last, "the solutions appendix must come after every exercise's chapter in _toc.yml"


@pytest.mark.slow
def test_edition_without_solutions_gives_no_answer_anywhere(site_without_solutions):
    text = site_without_solutions.text_until(None)
    problems = []
    for answer in answers():
        hits = [line for line in answer.lines if found(line, text)]
        if hits:
            where = sorted({f for line in hits for f in site_without_solutions.where(line, None)})
            problems.append(f"{answer.name}: {len(hits)} of {len(answer.lines)} lines in {where}: {hits[:4]}")
    assert not problems, "answers in the edition without solutions:\n" + "\n".join(problems)


@pytest.mark.slow
def test_edition_without_solutions_offers_no_exercise_notebook(site_without_solutions):
    site = site_without_solutions
    downloads = sorted(p.relative_to(site.root).as_posix() for p in (site.root / "_downloads").rglob("*.ipynb")) \
        if (site.root / "_downloads").is_dir() else []
    assert not downloads, f"notebooks offered for download: {downloads}"
    for assignment in release.assignments():
        page = site.root / f"{chapter_page(assignment)}.html"
        raw = page.read_text(encoding="utf-8")
        assert "course-exercise-withheld" in raw, f"{page.name}: no note in place of the link to {assignment}.ipynb"
        if site.language == "en":  # the Chinese edition says the same in Chinese
            assert "your instructor hands them out" in raw, f"{page.name}: the note does not say who hands it out"
            assert f"{assignment}.ipynb: from your instructor" in raw, f"{page.name}: the header menu does not say it"
    appendix = next(p for p in site.pages if p.endswith("_solutions"))
    if site.language == "en":
        assert "The solutions are not published in this edition" in (site.root / f"{appendix}.html").read_text("utf-8")


@pytest.mark.slow
def test_default_edition_offers_every_exercise_notebook(default_site):
    for assignment in release.assignments():
        raw = (default_site.root / f"{chapter_page(assignment)}.html").read_text(encoding="utf-8")
        assert re.search(rf'href="[^"]*_downloads/[^"]+/{assignment}\.ipynb"', raw), \
            f"{chapter_page(assignment)}: no download of {assignment}.ipynb"


# --------------------------------------------------------------------------------------------
# The chapters' sources (no build needed)
# --------------------------------------------------------------------------------------------


def test_no_chapter_includes_a_graded_object():
    """A `literalinclude` with `:pyobject:` of a graded object (or of one of its methods) would print
    its body; chapters show `{skeleton}` instead, and the solutions appendix shows the code."""
    graded = {answer.name for answer in answers() if "." in answer.name and ":" not in answer.name}
    problems = []
    for page in sorted((ROOT / "book").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for target, obj in re.findall(r"```\{literalinclude\} (\S+)\n(?::[^\n]*\n)*?:pyobject: (\S+)", text):
            module = Path(target).with_suffix("").as_posix().replace("../", "").replace("/", ".")
            dotted = f"{module}.{obj}"
            if any(dotted == g or dotted.startswith(g + ".") for g in graded):
                problems.append(f"book/{page.name} includes {dotted}")
    assert not problems, "\n".join(problems)
