"""The release: solutions filled from the reference, exercises/ byte-stable and up to date."""
from __future__ import annotations

import os
from pathlib import Path
import re
import subprocess
import sys

import nbformat
import pytest

from attnlab.course import release
from attnlab import MultiHeadAttention, scaled_dot_product_attention


def test_solution_source_wraps_the_body_and_keeps_signature_and_docstring():
    text = release.solution_source(scaled_dot_product_attention)
    head, _, rest = text.partition("### BEGIN SOLUTION")
    assert head.startswith("def scaled_dot_product_attention(") and '"""' in head
    body, _, tail = rest.partition("### END SOLUTION")
    assert "math.sqrt(d_k)" in body and "math.sqrt" not in head
    assert tail.strip() == ""
    compile(text, "<solution>", "exec")


def test_solution_source_of_a_class_wraps_every_method():
    text = release.solution_source(MultiHeadAttention)
    assert text.startswith("class MultiHeadAttention")
    assert text.count("### BEGIN SOLUTION") == text.count("### END SOLUTION") >= 2
    compile(text, "<solution>", "exec")


def test_unknown_directive_target_is_a_clear_error():
    with pytest.raises(SystemExit, match="cannot find 'attnlab.nope'"):
        release.expand_directives("#| solution-from: attnlab.nope")


FAKE_SOURCE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A problem set

```{code-cell} ipython3
---
nbgrader:
  grade: false
  grade_id: answer
  locked: false
  schema_version: 3
  solution: true
  task: false
---
x = 1
```

```{code-cell} ipython3
---
nbgrader:
  grade: true
  grade_id: test_x
  locked: true
  schema_version: 3
  solution: false
  task: false
---
assert x == 1
```
"""


def fake_course(root, points='{"test_x": 3}', source=FAKE_SOURCE) -> str:
    """A course folder with one source ``solutions/ps99_fake/ps99_fake.md`` and its check module."""
    (root / "solutions" / "ps99_fake").mkdir(parents=True)
    (root / "autograder" / "checks").mkdir(parents=True)
    (root / "solutions" / "ps99_fake" / "ps99_fake.md").write_text(source, encoding="utf-8")
    if points is not None:
        (root / "autograder" / "checks" / "test_ps99_fake.py").write_text(
            f'ASSIGNMENT = "ps99_fake"\nPOINTS = {points}\n\n\ndef test_x(submission):\n    pass\n', encoding="utf-8")
    return str(root / "solutions" / "ps99_fake" / "ps99_fake.md")


def test_graded_cells_get_points_and_hidden_block_from_the_check_module(tmp_path):
    nb = nbformat.reads(release.build_source(fake_course(tmp_path)), as_version=4)
    setup, answer, graded = nb.cells[0], nb.cells[2], nb.cells[3]
    assert release.is_setup_cell(setup)
    assert graded.metadata["nbgrader"]["points"] == 3 and "points" not in answer.metadata["nbgrader"]
    assert graded.source == ('assert x == 1\n### BEGIN HIDDEN TESTS\nfrom autograder.inline import run_check\n'
                             'run_check("ps99_fake", "test_x", globals())\n### END HIDDEN TESTS')
    assert "HIDDEN" not in answer.source


@pytest.mark.parametrize("points, source, message", [
    ('dict(test_x=3)', FAKE_SOURCE, "POINTS must be a literal dict"),
    ('{"test_x": 3, "test_y": 1}', FAKE_SOURCE, "names 'test_y', but solutions/ps99_fake/ps99_fake.md has no graded cell"),
    ('{"test_y": 1}', FAKE_SOURCE, "the graded cell 'test_x' has no entry in POINTS of autograder/checks/test_ps99_fake.py"),
    (None, FAKE_SOURCE, "ps99_fake has graded cells but no check module autograder/checks/test_ps99_fake.py"),
    ('{"test_x": 3}', FAKE_SOURCE.replace("  grade_id: test_x\n", "  grade_id: test_x\n  points: 3\n"),
     "remove `points:` from the graded cell 'test_x'"),
    ('{"test_x": 3}', FAKE_SOURCE.replace("assert x == 1\n", "assert x == 1\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n"),
     "remove the hidden-test block of the graded cell 'test_x'"),
])
def test_points_and_grade_ids_that_do_not_match_are_clear_errors(tmp_path, points, source, message):
    with pytest.raises(SystemExit, match=re.escape(message)):
        release.build_source(fake_course(tmp_path, points, source))


def test_committed_source_notebooks_take_their_points_from_the_check_modules():
    for name in release.assignments():
        nb = nbformat.read(os.path.join(release.ROOT, "solutions", name, name + ".ipynb"), as_version=4)
        graded = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
                  for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}
        assert graded == release.points_table(name), f"{name}: run `make exercises`"


def test_the_chapter_of_an_exercise_is_found_by_its_topic(tmp_path):
    (tmp_path / "book").mkdir()
    for page in ("ch02_attention.md", "ch03_self_attention.md", "appA_bug_hunt.md", "intro.md"):
        (tmp_path / "book" / page).write_text("# page\n", encoding="utf-8")
    assert release.chapter_of("ps02_attention", str(tmp_path)) == "book/ch02_attention.md"
    assert release.chapter_of("ps03_self_attention", str(tmp_path)) == "book/ch03_self_attention.md"
    assert release.chapter_of("ps09_bug_hunt", str(tmp_path)) == "book/appA_bug_hunt.md"
    assert release.chapter_of("ps04_multihead", str(tmp_path)) is None
    (tmp_path / "book" / "appB_attention.md").write_text("# page\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="ps02_attention matches several book pages"):
        release.chapter_of("ps02_attention", str(tmp_path))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("course"))
    return folder, release.build(folder)


@pytest.mark.slow
def test_committed_release_is_a_fresh_generation(course):
    folder, names = course
    assert "ps02_attention" in names
    assert release.differences(folder, names) == [], "run `make exercises` and commit the result"


@pytest.mark.slow
@pytest.mark.parametrize("folder_name", ["exercises", *release.TRANSLATIONS.values()])
def test_check_detects_a_stale_release(course, folder_name):
    folder, names = course
    path = os.path.join(folder, folder_name, "ps02_attention", "ps02_attention.ipynb")
    original = open(path, "rb").read()
    try:
        with open(path, "ab") as handle:
            handle.write(b" ")
        assert release.differences(folder, names) == [f"{folder_name}/ps02_attention/ps02_attention.ipynb (stale)"]
    finally:
        with open(path, "wb") as handle:
            handle.write(original)


@pytest.mark.slow
def test_release_has_no_solutions_or_hidden_tests(course):
    folder, names = course
    for name, folder_name in ((n, f) for n in names for f in ("exercises", *release.TRANSLATIONS.values())):
        released = os.path.join(release.ROOT, folder_name, name)
        assert sorted(os.listdir(released)) == [name + ".ipynb"] or not any(f.endswith(".md") for f in os.listdir(released))
        text = open(os.path.join(released, name + ".ipynb"), encoding="utf-8").read()
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "run_check" not in text


def test_release_cli_check_mode_exit_status_is_documented():
    out = subprocess.run([sys.executable, "-m", "attnlab.course.release", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--check" in out.stdout


def test_course_outline_lists_every_exercise_with_its_points():
    """The welcome page's table of the course is computed: every assignment on its chapter's row,
    with the points of its check module, in the order of _toc.yml."""
    from autograder import checks

    outline = release.course_outline()
    by_assignment = {row["assignment"]: row for row in outline if row["assignment"]}
    assert set(by_assignment) == set(release.assignments())
    for assignment, row in by_assignment.items():
        assert row["page"] + ".md" == release.chapter_of(assignment)
        assert row["points"] == sum(checks.load(assignment).POINTS.values())
        assert row["exercise"].startswith("Problem set"), row
    pages = [row["page"] for row in outline]
    toc = release.book_pages()
    assert pages == [p for p in toc if p in pages], "the outline follows _toc.yml's order"


def test_every_notebook_begins_with_the_setup_cell_and_its_address_comes_from_the_config(tmp_path):
    from attnlab.course.release import ROOT, SETUP_METADATA, install_address, is_setup_cell, setup_cell

    for folder in ("solutions", "exercises", *release.TRANSLATIONS.values()):
        for path in sorted(Path(ROOT, folder).glob("ps*/ps*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            assert is_setup_cell(nb.cells[0]), f"{path} does not begin with the setup cell"
            assert nb.cells[0].metadata["course"] == SETUP_METADATA["course"]
            assert sum(is_setup_cell(c) for c in nb.cells) == 1
    (tmp_path / "_config.yml").write_text("repository:\n  url: 'https://github.com/someone/course/'\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1.2.3"\n')
    assert install_address(str(tmp_path)) == "git+https://github.com/someone/course@v1.2.3"
    (tmp_path / "_config.yml").write_text("repository:\n  url: ''\n")
    assert install_address(str(tmp_path)) == ""
    for address in ("", "git+https://github.com/someone/course@v1.2.3"):
        source = setup_cell(address).source
        compile(source, "<setup cell>", "exec")
        assert f"COURSE = {address!r}" in source
    assert not is_setup_cell(nbformat.v4.new_code_cell("x = 1"))
