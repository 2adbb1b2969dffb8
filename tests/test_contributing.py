"""CONTRIBUTING.md, "Adding a chapter": every assignment has each of its places, and a missing one
is named in plain words.

The places of an assignment ``psNN_<topic>`` (the chapter <-> exercise map is the file names, see
``attnlab.course.release.chapter_of``):

1. its chapter ``book/<label>_<topic>.md``,
2. that chapter in ``_toc.yml``,
3. the source notebook ``solutions/psNN_<topic>/psNN_<topic>.md``,
4. the check module ``autograder/checks/test_psNN_<topic>.py``,
5. mutants ``tests/mutants/psNN_<topic>/*.py`` and one ``AssignmentSuite`` subclass in ``tests/``,
6. what ``make exercises`` generates: ``solutions/psNN_<topic>/psNN_<topic>.ipynb`` and ``exercises/psNN_<topic>/``.

An assignment is any name one of these places mentions, so a check module without a source is
found as well as a source without a check module.
"""
from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from attnlab.course import release

ROOT = Path(__file__).resolve().parents[1]
HOW = "see CONTRIBUTING.md, 'Adding a chapter'"


def toc_pages(root: Path) -> set[str]:
    """The pages of _toc.yml without their suffix, e.g. 'book/ch02_attention' (comments skipped)."""
    path = root / "_toc.yml"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    files = re.findall(r"^\s*(?:-\s*)?(?:file|root):\s*(\S+)", text, flags=re.MULTILINE)
    return {f.removesuffix(".md").removesuffix(".ipynb") for f in files}


def suites(root: Path) -> dict[str, list[str]]:
    """{assignment: ["tests/file.py::Class", ...]} of the AssignmentSuite subclasses in tests/test_*.py."""
    found: dict[str, list[str]] = {}
    for path in sorted((root / "tests").glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not (isinstance(node, ast.ClassDef)
                    and any(isinstance(b, ast.Name) and b.id == "AssignmentSuite" for b in node.bases)):
                continue
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
                        and any(isinstance(t, ast.Name) and t.id == "ASSIGNMENT" for t in stmt.targets)):
                    found.setdefault(stmt.value.value, []).append(f"{path.relative_to(root)}::{node.name}")
    return found


def assignments(root: Path) -> list[str]:
    """Every assignment that any of its places names."""
    names = set(release.assignments(str(root)))
    names |= {p.stem.removeprefix("test_") for p in (root / "autograder" / "checks").glob("test_*.py")}
    names |= {p.name for p in (root / "tests" / "mutants").glob("*") if p.is_dir()}
    names |= {p.name for p in (root / "exercises").glob("*") if p.is_dir()}
    names |= set(suites(root))
    return sorted(names)


def missing_places(root: Path) -> list[str]:
    """One line per missing place: the assignment, the path that is missing, and how to add it."""
    problems = []
    pages = toc_pages(root)
    found_suites = suites(root)
    for a in assignments(root):
        if not (root / "solutions" / a / f"{a}.md").is_file():
            problems.append(f"{a}: no source notebook solutions/{a}/{a}.md (jupytext MyST, with the graded cells; {HOW})")
        if not (root / "autograder" / "checks" / f"test_{a}.py").is_file():
            problems.append(f"{a}: no check module autograder/checks/test_{a}.py (ASSIGNMENT, POINTS and one "
                            "check per graded cell; see autograder/checks/README.md)")
        if not list((root / "tests" / "mutants" / a).glob("*.py")):
            problems.append(f"{a}: no mutants tests/mutants/{a}/*.py (at least one per check; {HOW})")
        classes = found_suites.get(a, [])
        if not classes:
            problems.append(f'{a}: no test suite: a class TestPsNN(AssignmentSuite) with ASSIGNMENT = "{a}" '
                            f"in tests/test_checks_{a}.py ({HOW})")
        elif len(classes) > 1:
            problems.append(f"{a}: several test suites {classes}; keep one")
        chapter = release.chapter_of(a, str(root))
        if chapter is None:
            topic = a.split("_", 1)[-1]
            problems.append(f"{a}: no chapter book/<label>_{topic}.md (e.g. book/{a.replace('ps', 'ch', 1)}.md) whose "
                            f"'## Exercise' section links exercises/{a}/{a}.ipynb ({HOW})")
        elif chapter.removesuffix(".md") not in pages:
            problems.append(f"{a}: its chapter {chapter} is not in _toc.yml (add `- file: {chapter.removesuffix('.md')}`)")
        for generated in (f"solutions/{a}/{a}.ipynb", f"exercises/{a}/{a}.ipynb"):
            if not (root / generated).is_file():
                problems.append(f"{a}: {generated} is not generated: run `make exercises`")
    for page in sorted((root / "book").glob("*.md")):
        if f"book/{page.stem}" not in pages:
            problems.append(f"book/{page.name} is not in _toc.yml (add `- file: book/{page.stem}`)")
    return problems


def test_every_assignment_has_all_its_places():
    problems = missing_places(ROOT)
    assert not problems, "places missing:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------- a fake course
def fake_course(root: Path) -> Path:
    """A course with one chapter, book/ch01_demo.md, and its complete assignment ps01_demo."""
    files = {
        "_toc.yml": "format: jb-book\nroot: book/intro\nparts:\n  - chapters:\n      - file: book/ch01_demo\n",
        "book/intro.md": "# Intro\n",
        "book/ch01_demo.md": "# Demo\n\n## Exercise\n\n[ps01_demo](path:../exercises/ps01_demo/ps01_demo.ipynb)\n",
        "solutions/ps01_demo/ps01_demo.md": "# ps01\n",
        "solutions/ps01_demo/ps01_demo.ipynb": "{}\n",
        "autograder/checks/test_ps01_demo.py": 'ASSIGNMENT = "ps01_demo"\nPOINTS = {"test_x": 1}\n',
        "tests/mutants/ps01_demo/slip.py": "# fails: test_x\n# replaces: answer\nx = 2\n",
        "tests/test_checks_ps01_demo.py": ('from _checks_mutants import AssignmentSuite\n\n\n'
                                           'class TestPs01(AssignmentSuite):\n    ASSIGNMENT = "ps01_demo"\n'),
        "exercises/ps01_demo/ps01_demo.ipynb": "{}\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_a_complete_fake_course_misses_nothing(tmp_path):
    assert missing_places(fake_course(tmp_path)) == []


@pytest.mark.parametrize("remove, expected", [
    ("book/ch01_demo.md", "ps01_demo: no chapter book/<label>_demo.md (e.g. book/ch01_demo.md)"),
    ("_toc.yml", "ps01_demo: its chapter book/ch01_demo.md is not in _toc.yml (add `- file: book/ch01_demo`)"),
    ("solutions/ps01_demo/ps01_demo.md", "ps01_demo: no source notebook solutions/ps01_demo/ps01_demo.md"),
    ("solutions/ps01_demo", "ps01_demo: no source notebook solutions/ps01_demo/ps01_demo.md"),
    ("autograder/checks/test_ps01_demo.py", "ps01_demo: no check module autograder/checks/test_ps01_demo.py"),
    ("tests/mutants/ps01_demo", "ps01_demo: no mutants tests/mutants/ps01_demo/*.py"),
    ("tests/test_checks_ps01_demo.py", "ps01_demo: no test suite: a class TestPsNN(AssignmentSuite) with "
                                       'ASSIGNMENT = "ps01_demo" in tests/test_checks_ps01_demo.py'),
    ("exercises/ps01_demo", "ps01_demo: exercises/ps01_demo/ps01_demo.ipynb is not generated: run `make exercises`"),
    ("solutions/ps01_demo/ps01_demo.ipynb", "ps01_demo: solutions/ps01_demo/ps01_demo.ipynb is not generated"),
])
def test_a_missing_place_is_named(tmp_path, remove, expected):
    root = fake_course(tmp_path)
    target = root / remove
    if remove == "_toc.yml":  # the chapter's line only
        target.write_text(target.read_text().replace("      - file: book/ch01_demo\n", ""), encoding="utf-8")
    elif target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    problems = missing_places(root)
    assert any(line.startswith(expected) for line in problems), problems
    if remove != "_toc.yml":  # a chapter out of the toc is named twice: as the exercise's and as a page
        assert len(problems) == 1 + (remove == "solutions/ps01_demo"), problems
