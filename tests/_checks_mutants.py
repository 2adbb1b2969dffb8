"""Shared by tests/test_checks_ps06..ps09: grade the source, the release and mutants of one assignment.

A mutant is the solved notebook with one change: a solution cell replaced (``# replaces: grade_id``)
or a cell appended after all the others (``# appends: yes``), e.g. a class from ``attnlab.course.bugs``
followed by ``DecoderLayer = decoder_layer_no_residual``. ``# fails:`` lists the checks it must fail.
Mutants are graded against only the checks they must fail (the solution shows that every check
passes on correct code), which keeps the suite fast.
"""
from __future__ import annotations

import glob
import inspect
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from _grading import ROOT, mutant_header, solved_notebook, with_cells, write
from attnlab.course import bugs
from autograder import checks
from autograder.grading.submission import Submission


def file_mutants(assignment: str) -> dict[str, dict]:
    """{name: {"code", "replaces" or None, "fails"}} from tests/mutants/<assignment>/*.py."""
    found = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "mutants", assignment, "*.py"))):
        meta = mutant_header(path)
        found[os.path.basename(path)[:-3]] = {"code": open(path, encoding="utf-8").read(),
                                             "replaces": meta.get("replaces"), "fails": meta["fails"].split()}
    return found


def bug_mutant(bug_name: str, rebind: str, fails: list[str]) -> dict:
    """A mutant that appends a catalogued bug from attnlab.course.bugs and puts it in place of ``rebind``."""
    code = inspect.getsource(bugs.CATALOGUE[bug_name].obj) + f"\n\n{rebind} = {bug_name}\n"
    return {"code": code, "replaces": None, "fails": fails}


def mutant_notebook(assignment: str, mutant: dict, folder, name: str, drop: tuple[str, ...] = ()) -> str:
    """The solved notebook with the mutant's change; code cells that start with one of ``drop``
    (slow demonstrations no check needs) are left out."""
    nb = solved_notebook(assignment)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and c.source.startswith(drop))] if drop else nb.cells
    if mutant["replaces"]:
        ids = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells}
        assert mutant["replaces"] in ids, f"{name}: no cell {mutant['replaces']!r}"
        nb = with_cells(nb, replace={mutant["replaces"]: mutant["code"]})
    else:
        nb = with_cells(nb, append=[mutant["code"]])
    return write(nb, os.path.join(str(folder), name, assignment + ".ipynb"))


def run_checks(assignment: str, notebook: str, tests=None) -> dict[str, str | None]:
    """{check: None if it passed, else its message}. A check that errors (not AssertionError) raises,
    and so does a notebook the worker could not run at all (a timeout or a crash while starting), so
    that a mutant cannot "fail its checks" for that reason."""
    module = checks.load(assignment)
    tests = list(module.POINTS) if tests is None else tests
    submission = Submission.from_notebook(notebook, skip_grade_ids=set(module.POINTS),
                                          limits=getattr(module, "LIMITS", None))
    results = {}
    try:
        for test in tests:
            try:
                getattr(module, test)(submission)
                results[test] = None
            except AssertionError as exc:
                results[test] = str(exc) or "(no message)"
        results["__cell_errors__"] = submission.cell_errors
        if submission.fatal:  # the worker never ran the notebook: no check result above means anything
            raise RuntimeError(f"{notebook}: the worker could not run the notebook: {submission.fatal}")
    finally:
        submission.close()
    return results


def grade_all(assignment: str, mutants: dict[str, dict], folder, jobs: int = 2,
              drop: tuple[str, ...] = ()) -> dict[str, dict]:
    """Run every check on the solved release (the release with the source's solution cells) and the
    blank release, and each mutant's expected failures; returns {name: run_checks result}."""
    jobs_list = {
        "solved": (write(solved_notebook(assignment), os.path.join(str(folder), "solved", assignment + ".ipynb")), None),
        "release": (os.path.join(ROOT, "exercises", assignment, assignment + ".ipynb"), None),
    }
    for name, mutant in mutants.items():
        jobs_list[name] = (mutant_notebook(assignment, mutant, folder, name, drop), mutant["fails"])
    with ThreadPoolExecutor(jobs) as pool:
        futures = {name: pool.submit(run_checks, assignment, path, tests) for name, (path, tests) in jobs_list.items()}
        return {name: future.result() for name, future in futures.items()}


def points_of_source(assignment: str) -> dict[str, float]:
    import nbformat

    nb = nbformat.read(os.path.join(ROOT, "solutions", assignment, assignment + ".ipynb"), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}


def assignment_tests(assignment: str, mutants: dict[str, dict], release_messages: dict[str, str],
                     drop: tuple[str, ...] = ()) -> dict:
    """The tests every assignment's suite shares, for a test module to take into its globals:
    the points table matches the source, the solution passes every check, the blank release fails
    every check (with ``release_messages[check]`` in its message), every check is caught by some
    mutant, and each mutant fails exactly the checks it lists. Also the module-scoped ``graded`` fixture."""

    @pytest.fixture(scope="module")
    def graded(tmp_path_factory):
        return grade_all(assignment, mutants, tmp_path_factory.mktemp(assignment), drop=drop)

    def test_points_table_matches_the_source_notebook():
        assert points_of_source(assignment) == checks.load(assignment).POINTS

    def test_solution_passes_every_check(graded):
        result = dict(graded["solved"])
        assert not result.pop("__cell_errors__")
        assert all(message is None for message in result.values()), result

    def test_release_fails_every_check_with_clear_messages(graded):
        result = dict(graded["release"])
        result.pop("__cell_errors__")
        assert all(message is not None for message in result.values()), result
        for check, text in release_messages.items():
            assert text in result[check], (check, result[check])

    def test_every_check_is_failed_by_some_mutant():
        caught = {test for mutant in mutants.values() for test in mutant["fails"]}
        assert caught == set(checks.load(assignment).POINTS)

    @pytest.mark.parametrize("mutant", sorted(mutants))
    def test_mutant_fails_its_checks(graded, mutant):
        result = dict(graded[mutant])
        assert not result.pop("__cell_errors__")
        assert all(message for message in result.values()), result

    return {f.__name__: f for f in (test_points_table_matches_the_source_notebook, test_solution_passes_every_check,
                                    test_release_fails_every_check_with_clear_messages,
                                    test_every_check_is_failed_by_some_mutant, test_mutant_fails_its_checks)} | {
        "graded": graded}
