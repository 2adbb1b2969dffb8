"""ps01_rnn_limits, ps03_self_attention, ps04_multihead, ps05_positional through the real grader.

For each assignment: a perfect learner (the release filled in from the source notebook) scores
full marks, the blank release scores zero, and every mutant in
``tests/mutants/<assignment>/`` fails exactly the checks its ``# fails:`` header names (and no
other). Every graded check is named by at least one mutant: a check that cannot fail grades nothing.
Each assignment's notebooks are graded once, together, in sandboxed workers.
"""
from __future__ import annotations

import glob
import inspect
import os
import re

import nbformat
import pytest

from _grading import ROOT, mutant_header, solved_notebook, with_cells, write
from attnlab.course import bugs
from autograder import checks
from autograder.grading.runner import grade_many

ASSIGNMENTS = [a for a in ("ps04_multihead", "ps05_positional", "ps01_rnn_limits", "ps03_self_attention")
               if os.path.isfile(os.path.join(ROOT, "exercises", a, a + ".ipynb"))]
pytestmark = pytest.mark.slow  # each notebook starts a worker process (a few seconds)


def mutants(assignment: str) -> list[str]:
    return sorted(glob.glob(os.path.join(ROOT, "tests", "mutants", assignment, "*.py")))


def replacements(path: str) -> dict[str, str]:
    """{grade_id: code} of a mutant file: each ``# replaces: <grade_id>`` line starts the code of one
    answer cell, so that one notebook can carry several independent slips (fewer notebooks to grade)."""
    sections, current = {}, None
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"#\s*replaces:\s*(\S+)", line)
            if match:
                current = match.group(1)
                sections[current] = ""
            elif current:
                sections[current] += line
    return sections


def catalogued_bugs(path: str) -> list[str]:
    """Cells to append for ``# appends-bug: <name in attnlab.course.bugs> as <notebook name>`` lines: the
    catalogued bug itself (one source for the book's appendix, the bug hunt and these mutants),
    then the rebinding, e.g. ``MultiHeadAttention = mha_wrong_head_split``."""
    cells = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"#\s*appends-bug:\s*(\w+)\s+as\s+(\w+)", line)
            if match:
                name, target = match.groups()
                cells.append(inspect.getsource(bugs.CATALOGUE[name].obj) + f"\n\n{target} = {name}\n")
    return cells


def mutant_cells(assignment: str, path: str):
    nb = with_cells(solved_notebook(assignment), replace=replacements(path), append=catalogued_bugs(path))
    for cell in nb.cells:  # the release is nbformat 4.4, whose cells carry no id
        cell.pop("id", None)
    return nb


CASES = [(a, os.path.basename(m)) for a in ASSIGNMENTS for m in mutants(a)]
_GRADED: dict[str, dict] = {}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """graded(assignment) -> {"release" | "solved" | mutant file name: GradeResult}, cached."""
    def get(assignment: str) -> dict:
        if assignment not in _GRADED:
            folder = tmp_path_factory.mktemp(assignment)
            notebook = assignment + ".ipynb"
            paths = {  # "solved" stands for the source too: the same answers, without the solution markers
                "release": os.path.join(ROOT, "exercises", assignment, notebook),
                "solved": write(solved_notebook(assignment), folder / "solved" / notebook),
            }
            for mutant in mutants(assignment):
                paths[os.path.basename(mutant)] = write(mutant_cells(assignment, mutant),
                                                        folder / os.path.basename(mutant) / notebook)
            results = grade_many(assignment, list(paths.values()), jobs=2)
            _GRADED[assignment] = dict(zip(paths, results))
        return _GRADED[assignment]
    return get


def _source_cells(assignment: str):
    return nbformat.read(os.path.join(ROOT, "solutions", assignment, assignment + ".ipynb"), as_version=4).cells


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_points_table_matches_the_source_notebook(assignment):
    module = checks.load(assignment)
    graded_cells = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
                    for c in _source_cells(assignment) if c.metadata.get("nbgrader", {}).get("grade")}
    assert graded_cells == module.POINTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_check_has_a_mutant_and_every_mutant_replaces_an_answer_cell(assignment):
    answers = {c.metadata["nbgrader"]["grade_id"] for c in _source_cells(assignment)
               if c.metadata.get("nbgrader", {}).get("solution")}
    caught = set()
    for mutant in mutants(assignment):
        replaced = set(replacements(mutant))
        assert replaced or catalogued_bugs(mutant), f"{mutant}: neither replaces a cell nor appends a bug"
        assert replaced <= answers, f"{mutant}: no answer cell {sorted(replaced - answers)}"
        caught |= set(mutant_header(mutant)["fails"].split())
    assert caught <= set(checks.load(assignment).POINTS), caught - set(checks.load(assignment).POINTS)
    assert set(checks.load(assignment).POINTS) <= caught, \
        f"checks that no mutant fails: {sorted(set(checks.load(assignment).POINTS) - caught)}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_solution_scores_full_marks(graded, assignment):
    result = graded(assignment)["solved"]
    assert result.score == result.max_score == sum(checks.load(assignment).POINTS.values()), \
        [(t.name, t.message) for t in result.tests if not t.passed]
    assert not result.notebook_errors


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_scores_zero_with_clear_messages(graded, assignment):
    result = graded(assignment)["release"]
    assert result.score == 0, [(t.name, t.message) for t in result.tests if t.passed]
    for test in result.tests:
        assert test.message and not test.internal_error, (test.name, test.message)
        assert "NotImplementedError" in test.message or "does not define" in test.message, (test.name, test.message)


@pytest.mark.parametrize("assignment, mutant", CASES)
def test_mutant_fails_exactly_its_checks(graded, assignment, mutant):
    expected = set(mutant_header(os.path.join(ROOT, "tests", "mutants", assignment, mutant))["fails"].split())
    result = graded(assignment)[mutant]
    failed = {t.name for t in result.tests if not t.passed}
    assert failed == expected, [(t.name, t.message) for t in result.tests]
    points = checks.load(assignment).POINTS
    assert result.score == sum(points.values()) - sum(points[n] for n in expected)
    for test in result.tests:
        if not test.passed:
            assert test.message and not test.internal_error, (test.name, test.message)
