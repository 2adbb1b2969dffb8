"""ps09_bug_hunt through the sandboxed worker: the solution passes every check, the release none,
each mutant (tests/mutants/ps09_bug_hunt/) fails exactly the checks it must; and the snippets the
notebook shows are the anonymous bugs of autograder.bugs the checks assume."""
from __future__ import annotations

import os

import nbformat
import pytest

from _checks_mutants import ROOT, file_mutants, grade_all, points_of_source
from autograder import bugs, checks
from autograder.release import snippet_source

ASSIGNMENT = "ps09_bug_hunt"
MUTANTS = file_mutants(ASSIGNMENT)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return grade_all(ASSIGNMENT, MUTANTS, tmp_path_factory.mktemp(ASSIGNMENT))


def test_points_table_matches_the_source_notebook():
    assert points_of_source(ASSIGNMENT) == checks.load(ASSIGNMENT).POINTS


def test_the_release_shows_each_snippet_anonymously():
    module = checks.load(ASSIGNMENT)
    nb = nbformat.read(os.path.join(ROOT, "exercises", ASSIGNMENT, ASSIGNMENT + ".ipynb"), as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    prefix = {"attention": "attention_", "heads": "heads_", "pe": "pe_"}
    for section, letters in module.SNIPPETS.items():
        for letter, bug in letters.items():
            snippet = snippet_source(bugs.CATALOGUE[bug].obj, prefix[section] + letter)
            assert snippet in sources, f"{section} {letter}: the notebook does not show {bug}"
            assert "BUG" not in snippet and bug not in snippet


def test_solution_passes_every_check(graded):
    result = dict(graded["solved"])
    assert not result.pop("__cell_errors__")
    assert all(message is None for message in result.values()), result


def test_release_fails_every_check_with_clear_messages(graded):
    result = dict(graded["release"])
    result.pop("__cell_errors__")
    assert all(message is not None for message in result.values()), result
    assert "does not define `nan_snippet`" in result["test_attention_diagnosis"]
    assert "NotImplementedError" in result["test_fixed_attention"]


def test_every_check_is_failed_by_some_mutant():
    caught = {test for mutant in MUTANTS.values() for test in mutant["fails"]}
    assert caught == set(checks.load(ASSIGNMENT).POINTS)


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_fails_its_checks(graded, mutant):
    result = dict(graded[mutant])
    assert not result.pop("__cell_errors__")
    assert all(message for message in result.values()), result
