"""Build the source notebooks and the student release: ``python -m attnlab.course.release [--check]``.

1. Every text source ``solutions/<a>/<a>.md`` (jupytext MyST) becomes ``solutions/<a>/<a>.ipynb``.
   Two directives fill code cells from the reference, so no solution is typed twice:

   ``#| source-from: attnlab.attention.check_mask``
       the object's source, verbatim (given code);
   ``#| solution-from: attnlab.attention.masked_softmax``
       the function's signature and docstring, its body between ``### BEGIN SOLUTION`` and
       ``### END SOLUTION`` (for a class: every method's body), so the release keeps the
       signature and asks for the body.

   Several names may follow a directive, separated by spaces. An assignment without a ``.md``
   source keeps its hand-written ``.ipynb``.

   Every autograded cell (nbgrader ``grade: true``, ``solution: false``) gets what was typed by
   hand before: its ``points`` from ``POINTS`` of ``autograder/checks/test_<a>.py`` (the one place
   for points; read from the file as data, since these helpers never import the grader) and, at
   its end, the hidden block that runs its check under plain ``nbgrader autograde``::

       ### BEGIN HIDDEN TESTS
       from autograder.inline import run_check
       run_check("<a>", "<grade_id>", globals())
       ### END HIDDEN TESTS

   A graded cell whose grade_id is not in POINTS, or a POINTS entry without its graded cell, stops
   the release.
2. ``nbgrader generate_assignment`` (through its Python API, in a scratch course folder) turns
   every ``solutions/<a>/<a>.ipynb`` into ``exercises/<a>/``, normalised so that the bytes do
   not change from run to run.
3. Each translated release of ``TRANSLATIONS`` (``exercises_zh/``) is generated the same way from a
   copy of the source notebook whose markdown is translated message by message through
   ``locales/<lang>/LC_MESSAGES/exercises/<a>.po`` (:mod:`attnlab.course.exercise_i18n`; English where
   a message has no translation), marked ``metadata["attnlab"]["language"]`` (read it with
   :func:`notebook_language`), its setup cell ending with ``set_language(<lang>)``. Code cells,
   grade_ids and points are the English ones; nbgrader computes the release's own checksums.

``--check`` builds everything in a scratch folder and fails (exit 1, listing the files) when
``solutions/*/*.ipynb``, ``exercises/`` or ``exercises_zh/`` differ from a fresh build.

The chapter <-> exercise map is the file names (:func:`chapter_of`): ``psNN_<topic>`` is the
exercise of the book page ``book/<label>_<topic>.md`` (ch02_attention, appA_bug_hunt).

The book reads the same sources: :func:`skeleton_source` is what a chapter shows of a graded object
before its exercise (signature and docstring, bodies ``...``), and :func:`graded_solutions` lists every
graded answer of an assignment (the objects of its ``#| solution-from:`` lines and its hand-written
solution cells) for the solutions appendix and for the test that no answer is published too early.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import os
import re
import shutil
import sys
import tempfile
import textwrap
from dataclasses import dataclass

import nbformat



def course_root(start: str | None = None) -> str | None:
    """The course repository: the nearest folder at or above ``start`` (default: the working
    directory) that holds ``nbgrader_config.py`` and ``solutions/``. The release works on a clone,
    not on the installed package, so it is found from where the command runs."""
    here = os.path.abspath(start or os.getcwd())
    while True:
        if os.path.isfile(os.path.join(here, "nbgrader_config.py")) and os.path.isdir(os.path.join(here, "solutions")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


# The clone this runs in; else the checkout this package was installed from in editable mode.
ROOT = course_root() or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOLUTIONS = "solutions"
EXERCISES = "exercises"
# The translated releases: {language: release folder}, each from the same source notebooks with their
# prose translated through locales/<language>/LC_MESSAGES/exercises/<a>.po (attnlab.course.exercise_i18n).
TRANSLATIONS = {"zh_CN": "exercises_zh"}
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


# --------------------------------------------------------------------------- sources
def _resolve(dotted: str):
    module_name, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SystemExit(f"release: cannot find {dotted!r} named in a directive: {exc}") from None


def _solution_lines(lines: list[str], node: ast.AST, offset: int, stub: str | None = None) -> list[str]:
    """Lines of a def/class with every function body wrapped in solution markers (with ``stub``,
    e.g. ``"..."``: every body replaced by that one line)."""
    out: list[str] = []
    start = node.lineno - 1 - offset
    if getattr(node, "decorator_list", None):
        start = node.decorator_list[0].lineno - 1 - offset
    body = node.body
    has_doc = (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
               and isinstance(body[0].value.value, str))
    head_end = body[0].end_lineno - offset if has_doc else body[0].lineno - 1 - offset
    out += lines[start:head_end]
    rest = body[1:] if has_doc else body
    if isinstance(node, ast.ClassDef):
        cursor = head_end
        for child in rest:
            child_start = (child.decorator_list[0].lineno if getattr(child, "decorator_list", None) else child.lineno) - 1 - offset
            out += lines[cursor:child_start]
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out += _solution_lines(lines, child, offset, stub)
            else:
                out += lines[child_start:child.end_lineno - offset]
            cursor = child.end_lineno - offset
        return out
    if not rest:
        return out
    first = lines[rest[0].lineno - 1 - offset]
    indent = first[: len(first) - len(first.lstrip())]
    if stub is not None:
        return out + [indent + stub]
    return out + [indent + BEGIN] + lines[head_end:node.end_lineno - offset] + [indent + END]


def solution_source(obj) -> str:
    """The source of a reference function or class with its bodies as nbgrader solution regions."""
    source = textwrap.dedent(inspect.getsource(obj))
    node = ast.parse(source).body[0]
    return "\n".join(_solution_lines(source.splitlines(), node, 0))


def skeleton_source(obj) -> str:
    """The signature and docstring of a reference function or class with every body replaced by
    ``...`` (for a class: each method's signature and docstring): what the exercise notebook asks
    for, and what a chapter shows before its exercise (the book's ``{skeleton}`` directive)."""
    source = textwrap.dedent(inspect.getsource(obj))
    node = ast.parse(source).body[0]
    return "\n".join(_solution_lines(source.splitlines(), node, 0, stub="..."))


def snippet_source(obj, alias: str) -> str:
    """An anonymous copy for a bug hunt: the def/class renamed to ``alias``, without its docstring
    and without ``# BUG`` comments (``#| snippet-from: attnlab.course.bugs.sdpa_no_scaling as attention_a``)."""
    source = textwrap.dedent(inspect.getsource(obj))
    node = ast.parse(source).body[0]
    lines = source.splitlines()
    body = node.body
    if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        del lines[body[0].lineno - 1:body[0].end_lineno]
        if body[0].lineno - 1 < len(lines) and not lines[body[0].lineno - 1].strip():
            del lines[body[0].lineno - 1]  # the blank line that followed a class docstring
    head = node.lineno - 1
    keyword = "class" if isinstance(node, ast.ClassDef) else "def"
    lines[head] = lines[head].replace(f"{keyword} {node.name}", f"{keyword} {alias}", 1)
    lines = [re.sub(r"\s+#.*\bBUG\b.*$", "", line) for line in lines]
    return "\n".join(lines).rstrip()


def expand_directives(source: str) -> str:
    parts = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#| source-from:"):
            parts += [textwrap.dedent(inspect.getsource(_resolve(n))).rstrip() for n in stripped.split(":", 1)[1].split()]
        elif stripped.startswith("#| solution-from:"):
            parts += [solution_source(_resolve(n)) for n in stripped.split(":", 1)[1].split()]
        elif stripped.startswith("#| snippet-from:"):
            words = stripped.split(":", 1)[1].split()
            if len(words) % 3 or any(w != "as" for w in words[1::3]):
                raise SystemExit(f"release: write `#| snippet-from: module.name as alias ...`, got {stripped!r}")
            parts += [snippet_source(_resolve(n), alias) for n, alias in zip(words[0::3], words[2::3])]
        else:
            parts.append(line)
    text = "\n".join(parts)
    # Directive blocks are separated by a blank pair of lines, as in a module.
    return text.replace("\n\ndef ", "\n\n\ndef ").replace("\n\n\n\ndef ", "\n\n\ndef ")


# --------------------------------------------------------------------------- grading boilerplate
CHECKS = os.path.join("autograder", "checks")
HIDDEN_TESTS = ("### BEGIN HIDDEN TESTS\n"
                "from autograder.inline import run_check\n"
                'run_check("{assignment}", "{grade_id}", globals())\n'
                "### END HIDDEN TESTS")


def check_module_path(assignment: str, root: str = ROOT) -> str:
    return os.path.join(root, CHECKS, f"test_{assignment}.py")


def points_table(assignment: str, root: str = ROOT) -> dict[str, float]:
    """``POINTS`` of the assignment's check module, read from its source as a literal: the course
    helpers never import the grader, so the table must be plain data (``{"test_x": 2, ...}``)."""
    path = check_module_path(assignment, root)
    rel = os.path.relpath(path, root)
    if not os.path.isfile(path):
        raise SystemExit(f"release: {assignment} has graded cells but no check module {rel}")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if not any(isinstance(t, ast.Name) and t.id == "POINTS" for t in targets):
            continue
        try:
            points = ast.literal_eval(node.value) if node.value is not None else None
        except (ValueError, TypeError, SyntaxError):  # not a literal
            points = None
        if (not isinstance(points, dict) or not points
                or not all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                           for k, v in points.items())):
            raise SystemExit(f"release: {rel} line {node.lineno}: POINTS must be a literal dict "
                             "{\"grade_id\": points, ...} (the release reads it as data, without importing the grader)")
        return points
    raise SystemExit(f"release: {rel} has no POINTS = {{\"grade_id\": points, ...}}")


def _is_autograded(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def add_grading(nb, assignment: str, root: str = ROOT) -> None:
    """Give every autograded cell its points from POINTS and its hidden block (in place)."""
    graded = [cell for cell in nb.cells if _is_autograded(cell)]
    if not graded:
        return
    points = points_table(assignment, root)
    rel = os.path.relpath(check_module_path(assignment, root), root)
    source = f"{SOLUTIONS}/{assignment}/{assignment}.md"
    for cell in graded:
        meta = cell.metadata["nbgrader"]
        grade_id = meta.get("grade_id")
        if "points" in meta:
            raise SystemExit(f"release: {source}: remove `points:` from the graded cell {grade_id!r}; "
                             f"its points come from POINTS in {rel}")
        if "HIDDEN TESTS" in cell.source:
            raise SystemExit(f"release: {source}: remove the hidden-test block of the graded cell {grade_id!r}; "
                             "the release writes it")
        if grade_id not in points:
            raise SystemExit(f"release: {source}: the graded cell {grade_id!r} has no entry in POINTS of {rel} "
                             f"(it has {', '.join(points)})")
        meta["points"] = points[grade_id]
        cell.source = cell.source.rstrip("\n") + "\n" + HIDDEN_TESTS.format(assignment=assignment, grade_id=grade_id)
    orphans = [name for name in points if name not in {cell.metadata["nbgrader"].get("grade_id") for cell in graded}]
    if orphans:
        raise SystemExit(f"release: POINTS of {rel} names {', '.join(map(repr, orphans))}, "
                         f"but {source} has no graded cell with that grade_id")


# --------------------------------------------------------------------------- the setup cell
# Every exercise notebook begins with this cell. Where the course library is installed (a course
# machine, `make lab`, a JupyterHub) it does nothing; on Colab or a bare Jupyter it installs the
# course from the repository address of `_config.yml` pinned to the release tag `v<version>`; with
# no address configured it says what to do. Never a bare package name: nobody publishes ours, and
# a squatter's package would run for every learner. The grader never runs it (its metadata, below).
from .setup_cell import SETUP_METADATA, is_setup_cell, notebook_language  # noqa: E402,F401 - light for the grader
SETUP_SOURCE = """\
# Setup: run this cell first. It installs the course library `attnlab` when it is missing (on Colab,
# say) from the course's repository at its release tag; where the course is installed, it does nothing.
import importlib.util, subprocess, sys

COURSE = {address!r}  # the course's repository address and release tag (empty: none configured)
if importlib.util.find_spec("attnlab") is None:
    if not COURSE:
        raise RuntimeError(
            "The course library `attnlab` is not installed here, and this notebook names no address to "
            "install it from. Ask your teacher for the course's repository address and release tag, then run "
            "`%pip install 'git+ADDRESS@TAG'` in a cell; or, in a clone of the course, run `pip install .`.")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", COURSE], check=True)
    importlib.invalidate_caches()
print("The course library is ready.")
"""


def install_address(root: str = ROOT) -> str:
    """``git+<repository.url of _config.yml>@v<version of pyproject.toml>``, or "" without an address."""
    import tomllib

    import yaml

    config = os.path.join(root, "_config.yml")
    if not os.path.isfile(config):  # a course folder without a book
        return ""
    with open(config, encoding="utf-8") as handle:
        url = ((yaml.safe_load(handle) or {}).get("repository") or {}).get("url") or ""
    if not url.strip():
        return ""
    with open(os.path.join(root, "pyproject.toml"), "rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    return f"git+{url.strip().rstrip('/')}@v{version}"


# The translated releases' setup cell ends with this: the self-checks speak the notebook's language.
SET_LANGUAGE = ('from attnlab.course.messages import set_language\n'
                'set_language("{language}")  # the self-checks speak the language of this notebook\n')


def setup_cell(address: str, language: str = "en"):
    """The first cell of every exercise notebook (see SETUP_SOURCE); in another language than
    English, it also sets the language of the self-checks (SET_LANGUAGE)."""
    import copy

    source = SETUP_SOURCE.format(address=address)
    if language != "en":
        source += SET_LANGUAGE.format(language=language)
    cell = nbformat.v4.new_code_cell(source)
    cell.pop("id", None)  # the notebooks are nbformat 4.4, without cell ids
    cell.metadata.update(copy.deepcopy(SETUP_METADATA))
    return cell


def notebook_text(nb) -> str:
    """Stable serialisation: nbformat's sorted keys, one-space indent, trailing newline."""
    return nbformat.writes(nb) + ("" if nbformat.writes(nb).endswith("\n") else "\n")


def build_source(md_path: str) -> str:
    """The .ipynb text built from one MyST source ``<root>/solutions/<a>/<a>.md``."""
    import jupytext

    md_path = os.path.abspath(md_path)
    assignment = os.path.splitext(os.path.basename(md_path))[0]
    root = os.path.dirname(os.path.dirname(os.path.dirname(md_path)))
    nb = jupytext.read(md_path, fmt="md:myst")
    nb.metadata.pop("jupytext", None)
    for cell in nb.cells:
        cell.pop("id", None)
        if cell.cell_type == "code":
            cell.source = expand_directives(cell.source)
            cell.outputs, cell.execution_count = [], None
    add_grading(nb, assignment, root)
    nb.cells.insert(0, setup_cell(install_address(root)))
    nb.nbformat, nb.nbformat_minor = 4, 4
    nbformat.validate(nb)
    return notebook_text(nb)


def assignments(root: str = ROOT) -> list[str]:
    folder = os.path.join(root, SOLUTIONS)
    if not os.path.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder)
                  if os.path.isfile(os.path.join(folder, name, name + ".ipynb"))
                  or os.path.isfile(os.path.join(folder, name, name + ".md")))


# --------------------------------------------------------------------------- chapters
BOOK = "book"


def chapter_of(assignment: str, root: str = ROOT) -> str | None:
    """The book page an assignment is the exercise of, by name alone (the one chapter <-> exercise
    map): ``psNN_<topic>`` belongs to the page ``book/<label>_<topic>.md``, e.g. ps02_attention to
    book/ch02_attention.md and ps09_bug_hunt to book/appA_bug_hunt.md. None when there is no such
    page; two pages with the same topic are an error."""
    topic = assignment.split("_", 1)[1] if "_" in assignment else assignment
    folder = os.path.join(root, BOOK)
    pages = sorted(name for name in (os.listdir(folder) if os.path.isdir(folder) else [])
                   if name.endswith(".md") and name[:-3].split("_", 1)[-1] == topic and "_" in name)
    if len(pages) > 1:
        raise SystemExit(f"release: {assignment} matches several book pages {pages}; a topic names one page")
    return f"{BOOK}/{pages[0]}" if pages else None


def exercise_chapters(root: str = ROOT) -> dict[str, str | None]:
    """{assignment: its book page (``book/ch02_attention.md``) or None} for every assignment."""
    return {name: chapter_of(name, root) for name in assignments(root)}


def book_pages(root: str = ROOT) -> list[str]:
    """The pages of ``_toc.yml`` in reading order (``book/ch02_attention``), its comments skipped."""
    with open(os.path.join(root, "_toc.yml"), encoding="utf-8") as handle:
        text = handle.read()
    pages = re.findall(r"^\s*(?:-\s*)?(?:root|file):\s*(\S+)", re.sub(r"#.*", "", text), re.M)
    return [page[:-3] if page.endswith(".md") else page for page in pages]


def _title(path: str) -> str:
    """The first level-1 heading of a MyST file."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("# "):
                return line[2:].strip()
    return os.path.basename(path)


def course_outline(root: str = ROOT) -> list[dict]:
    """One row per chapter or appendix of the book (``chNN_*``/``appX_*`` pages, in ``_toc.yml``'s
    order, the welcome page excepted) with its exercise: ``{"label", "page", "title", "assignment",
    "exercise", "points"}``; the exercise's title and points come from its source and its check
    module, so the welcome page's table of the course is computed, never typed."""
    exercises = {chapter_of(a, root): a for a in assignments(root)}
    rows = []
    for page in book_pages(root):
        name = os.path.basename(page)
        label = name.split("_", 1)[0]
        if not re.fullmatch(r"ch\d\d|app[A-Z]", label) or label == "ch00":
            continue
        assignment = exercises.get(page + ".md")
        source = os.path.join(root, SOLUTIONS, assignment, assignment + ".md") if assignment else None
        rows.append({"label": label[2:].lstrip("0") if label.startswith("ch") else label[3:], "page": page,
                     "title": _title(os.path.join(root, page + ".md")), "assignment": assignment,
                     "exercise": _title(source) if source and os.path.isfile(source) else None,
                     "points": sum(points_table(assignment, root).values()) if assignment else None})
    return rows


# --------------------------------------------------------------------------- graded answers
SOLUTION_FROM = "#| solution-from:"


@dataclass(frozen=True)
class GradedSolution:
    """One graded answer of an assignment and its full code.

    ``name`` is the dotted path of a library object named by a ``#| solution-from:`` line
    (``from_library``), or the grade_id of a solution cell written by hand between
    ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (its code as in the built notebook)."""

    assignment: str
    name: str
    source: str
    from_library: bool


def _solution_cells(assignment: str, root: str):
    """(grade_id, md source) of every nbgrader solution cell of solutions/<a>/<a>.md, in order."""
    import jupytext

    md = os.path.join(root, SOLUTIONS, assignment, assignment + ".md")
    if not os.path.isfile(md):
        return []
    nb = jupytext.read(md, fmt="md:myst")
    return [(cell.metadata["nbgrader"].get("grade_id"), cell.source) for cell in nb.cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")]


def solution_targets(assignment: str, root: str = ROOT) -> list[str]:
    """The dotted names of the ``#| solution-from:`` lines of ``solutions/<a>/<a>.md``, in order."""
    names: list[str] = []
    for _, source in _solution_cells(assignment, root):
        for line in source.splitlines():
            if line.strip().startswith(SOLUTION_FROM):
                names += [n for n in line.split(":", 1)[1].split() if n not in names]
    return names


def graded_solutions(assignment: str, root: str = ROOT) -> list[GradedSolution]:
    """Every graded answer of an assignment, in the order of its notebook: the full source of each
    object its ``#| solution-from:`` lines name, and each solution cell written by hand (read from
    the built ``solutions/<a>/<a>.ipynb``, else expanded from the ``.md``)."""
    built = os.path.join(root, SOLUTIONS, assignment, assignment + ".ipynb")
    cells = {}
    if os.path.isfile(built):
        with open(built, encoding="utf-8") as handle:
            cells = {cell.metadata["nbgrader"].get("grade_id"): cell.source
                     for cell in nbformat.read(handle, as_version=4).cells
                     if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")}
    found: list[GradedSolution] = []
    for grade_id, source in _solution_cells(assignment, root):
        directives = [line for line in source.splitlines() if line.strip().startswith(SOLUTION_FROM)]
        for line in directives:
            for name in line.split(":", 1)[1].split():
                if all(s.name != name for s in found):
                    code = textwrap.dedent(inspect.getsource(_resolve(name))).rstrip()
                    found.append(GradedSolution(assignment, name, code, True))
        if BEGIN in source:  # written by hand (alone, or beside directives)
            if not directives and grade_id in cells:
                code = cells[grade_id]
            else:
                code = expand_directives("\n".join(line for line in source.splitlines()
                                                    if not line.strip().startswith(SOLUTION_FROM)))
            found.append(GradedSolution(assignment, grade_id, code.strip("\n"), False))
    return found


# --------------------------------------------------------------------------- release
def _normalise(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        nb = nbformat.read(handle, as_version=4)
    for cell in nb.cells:
        cell.pop("id", None)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(notebook_text(nb))


SHM = "/dev/shm"


def generate(course: str, names: list[str], source: str = SOLUTIONS, release: str = EXERCISES) -> None:
    """Run nbgrader generate_assignment for each assignment in the scratch course folder, from
    ``course/<source>/`` into ``course/<release>/``."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    # nbgrader's Gradebook runs the `alembic` command: it lives beside this interpreter.
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    config = PyFileConfigLoader("nbgrader_config.py", path=ROOT).load_config()
    config.CourseDirectory.root = course
    config.CourseDirectory.source_directory = source
    config.CourseDirectory.release_directory = release
    # The gradebook is scratch. nbgrader commits it once per cell and each SQLite commit waits for the
    # disk (seconds in all on a busy one): it goes to memory-backed /dev/shm where there is one.
    scratch = tempfile.mkdtemp(prefix="release-gradebook-", dir=SHM if os.access(SHM, os.W_OK) else course)
    try:
        config.CourseDirectory.db_url = "sqlite:///" + os.path.join(scratch, "gradebook.db")
        coursedir = CourseDirectory(config=config)
        api = NbGraderAPI(coursedir=coursedir, config=config)
        for name in names:
            result = api.generate_assignment(name, force=True, create=True)
            if not result.get("success"):
                raise SystemExit(f"release: nbgrader generate_assignment {name} failed:\n{result.get('error') or result.get('log')}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for dirpath, _, files in os.walk(os.path.join(course, release)):
        for name in files:
            if name.endswith(".ipynb"):
                _normalise(os.path.join(dirpath, name))


def translated_source(text: str, assignment: str, language: str, catalogues: str = ROOT) -> str:
    """The source notebook (its .ipynb text) in ``language``: every markdown message translated by
    ``<catalogues>/locales/<language>/LC_MESSAGES/exercises/<a>.po`` (English where it has no
    translation), ``metadata["attnlab"]["language"]`` set, and the setup cell setting the language of
    the self-checks. Code cells and their nbgrader metadata are the English ones."""
    from . import exercise_i18n

    nb = nbformat.reads(text, as_version=4)
    exercise_i18n.translate_notebook(nb, exercise_i18n.translations(catalogues, language, assignment))
    nb.metadata["attnlab"] = {"language": language}
    setups = [index for index, cell in enumerate(nb.cells) if is_setup_cell(cell)]
    if len(setups) != 1:
        raise SystemExit(f"release: {SOLUTIONS}/{assignment}/{assignment}.ipynb has {len(setups)} setup cells, not one")
    english = nb.cells[setups[0]]
    if not english.source.startswith(SETUP_SOURCE.split("{address!r}")[0]):
        raise SystemExit(f"release: the setup cell of {SOLUTIONS}/{assignment}/{assignment}.ipynb is not the release's")
    english.source = english.source.rstrip("\n") + "\n" + SET_LANGUAGE.format(language=language)
    nbformat.validate(nb)
    return notebook_text(nb)


def build(course: str, only: list[str] | None = None, catalogues: str = ROOT) -> list[str]:
    """Build sources and releases (English and TRANSLATIONS, these with the catalogues under
    ``catalogues``) into the scratch folder ``course``; return the assignment names (all of them, or
    those in ``only``)."""
    names = assignments()
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise SystemExit(f"release: no assignment {', '.join(unknown)}; known: {', '.join(names)}")
        names = [name for name in names if name in only]
    for name in names:
        src_dir = os.path.join(ROOT, SOLUTIONS, name)
        dst_dir = os.path.join(course, SOLUTIONS, name)
        shutil.copytree(src_dir, dst_dir, ignore=shutil.ignore_patterns("*.md", ".ipynb_checkpoints", "__pycache__"))
        md = os.path.join(src_dir, name + ".md")
        if os.path.isfile(md):
            with open(os.path.join(dst_dir, name + ".ipynb"), "w", encoding="utf-8") as handle:
                handle.write(build_source(md))
        with open(os.path.join(dst_dir, name + ".ipynb"), encoding="utf-8") as handle:
            english = handle.read()
        for language in TRANSLATIONS:
            target = os.path.join(course, _source_folder(language), name)
            shutil.copytree(dst_dir, target)
            with open(os.path.join(target, name + ".ipynb"), "w", encoding="utf-8") as handle:
                handle.write(translated_source(english, name, language, catalogues))
    generate(course, names)
    for language, release in TRANSLATIONS.items():
        generate(course, names, _source_folder(language), release)
    return names


def _source_folder(language: str) -> str:
    """The scratch folder of the translated source notebooks (never committed)."""
    return f"{SOLUTIONS}_{language}"


def _tree(folder: str) -> dict[str, bytes]:
    files = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d not in (".ipynb_checkpoints", "__pycache__")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                files[os.path.relpath(path, folder)] = handle.read()
    return files


def differences(course: str, names: list[str], only: bool = False) -> list[str]:
    """Files that differ from the fresh build in ``course`` (with ``only``: within ``names``' folders)."""
    diffs = []
    for name in names:
        built = os.path.join(course, SOLUTIONS, name, name + ".ipynb")
        here = os.path.join(ROOT, SOLUTIONS, name, name + ".ipynb")
        if not os.path.isfile(here) or open(here, "rb").read() != open(built, "rb").read():
            diffs.append(os.path.relpath(here, ROOT))
    for release in (EXERCISES, *TRANSLATIONS.values()):
        fresh, committed = _tree(os.path.join(course, release)), _tree(os.path.join(ROOT, release))
        if only:
            committed = {rel: data for rel, data in committed.items() if rel.split(os.sep)[0] in names}
        for rel in sorted(set(fresh) | set(committed)):
            if fresh.get(rel) != committed.get(rel):
                state = "missing" if rel not in committed else "stale" if rel in fresh else "not generated by the release"
                diffs.append(f"{release}/{rel} ({state})")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attnlab.course.release", description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="only these assignments (default: all)")
    parser.add_argument("--check", action="store_true", help="fail if solutions/*.ipynb, exercises/ or exercises_zh/ are stale")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="release-") as course:
        names = build(course, args.assignments)
        if args.check:
            diffs = differences(course, names, only=bool(args.assignments))
            if diffs:
                print("release: these files differ from a fresh build; run `make exercises` and commit:")
                print("\n".join("  " + d for d in diffs))
                return 1
            print(f"release: {len(names)} assignment(s) up to date")
            return 0
        for name in names:
            built = os.path.join(course, SOLUTIONS, name, name + ".ipynb")
            shutil.copyfile(built, os.path.join(ROOT, SOLUTIONS, name, name + ".ipynb"))
            for release in (EXERCISES, *TRANSLATIONS.values()):
                target = os.path.join(ROOT, release, name)
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(os.path.join(course, release, name), target)
        print(f"release: built {len(names)} assignment(s): {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
