"""ps02_attention through the real grader: reference full marks, release zero, every mutant loses
exactly the points of the checks it breaks. Each notebook runs in a sandboxed worker."""
from __future__ import annotations

import glob
import os

import nbformat
import pytest

from _grading import ROOT, mutant_header, release_notebook, solved_notebook, with_cells, write
from autograder import checks
from autograder.grading.runner import grade_many

ASSIGNMENT = "ps02_attention"
MUTANTS = sorted(glob.glob(os.path.join(ROOT, "tests", "mutants", ASSIGNMENT, "*.py")))
pytestmark = pytest.mark.slow  # each notebook starts a worker process (a few seconds)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the source, the release, a perfect learner and every mutant, in parallel, once."""
    folder = tmp_path_factory.mktemp("ps02")
    paths = {
        "source": os.path.join(ROOT, "solutions", ASSIGNMENT, ASSIGNMENT + ".ipynb"),
        "release": os.path.join(ROOT, "exercises", ASSIGNMENT, ASSIGNMENT + ".ipynb"),
        "solved": write(solved_notebook(ASSIGNMENT), folder / "solved" / "ps02_attention.ipynb"),
    }
    for mutant in MUTANTS:
        meta = mutant_header(mutant)
        code = open(mutant, encoding="utf-8").read()
        nb = with_cells(solved_notebook(ASSIGNMENT), replace={meta["replaces"]: code})
        paths[os.path.basename(mutant)] = write(nb, folder / os.path.basename(mutant) / "ps02_attention.ipynb")
    results = grade_many(ASSIGNMENT, list(paths.values()), jobs=2)
    return dict(zip(paths, results))


def test_points_table_matches_the_source_notebook():
    module = checks.load(ASSIGNMENT)
    nb = nbformat.read(os.path.join(ROOT, "solutions", ASSIGNMENT, ASSIGNMENT + ".ipynb"), as_version=4)
    graded_cells = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
                    for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert graded_cells == module.POINTS


@pytest.mark.parametrize("name", ["source", "solved"])
def test_reference_solution_scores_full_marks(graded, name):
    result = graded[name]
    assert result.score == result.max_score == 10, [(t.name, t.message) for t in result.tests]
    assert not result.notebook_errors


def test_release_scores_zero_with_clear_messages(graded):
    result = graded["release"]
    assert result.score == 0
    assert all(not t.passed for t in result.tests)
    messages = {t.name: t.message for t in result.tests}
    assert "NotImplementedError" in messages["test_masked_softmax"]
    assert "does not define `score_std_unscaled`" in messages["test_score_std"]


@pytest.mark.parametrize("mutant", [os.path.basename(m) for m in MUTANTS])
def test_mutant_fails_exactly_its_checks(graded, mutant):
    expected = set(mutant_header(os.path.join(ROOT, "tests", "mutants", ASSIGNMENT, mutant))["fails"].split())
    result = graded[mutant]
    failed = {t.name for t in result.tests if not t.passed}
    assert failed == expected, [(t.name, t.message) for t in result.tests]
    module = checks.load(ASSIGNMENT)
    assert result.score == 10 - sum(module.POINTS[n] for n in expected)
    for test in result.tests:
        if not test.passed:
            assert test.message and not test.internal_error
