"""One harness for every assignment's check suite: ``class TestPs04(AssignmentSuite)`` in
``tests/test_checks_<assignment>.py``, with ``ASSIGNMENT = "ps04_multihead"``.

Each suite grades, in sandboxed workers, two at a time, once per class:

- the solved notebook (the release with the source's answers): full marks from the real grader;
- the blank release: zero, and every failure a message that says what to write;
- every mutant in ``tests/mutants/<assignment>/``: the solved notebook with a slip, which must
  fail the checks it lists. A mutant is graded against those checks only (the solution shows that
  every check passes on correct code), which keeps the suite fast; with ``exact = True`` against
  every check, through the real grader, so that it fails exactly those and loses exactly their points.
  A mutant that lists no check is another correct answer: it is graded against every check and
  must pass them all.

A mutant file, one dialect (a directive is a whole line starting at column 0)::

    # fails: test_a test_b              first line: the checks it must fail (none: a correct variant)
    # what is wrong, in words            any comment lines
    # replaces: GRADE_ID                 the lines below, to the next directive, replace that answer cell
    # appends:                           the lines below are appended as a new cell after all the others
    # appends-bug: NAME as TARGET        append attnlab.course.bugs.CATALOGUE[NAME] and rebind TARGET = NAME

One file may carry several changes (fewer notebooks to grade).
"""
from __future__ import annotations

import glob
import inspect
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import nbformat
import pytest

from _grading import ROOT, solved_notebook, with_cells, write
from attnlab.course import bugs
from autograder import checks
from autograder.grading.runner import grade
from autograder.grading.submission import Submission

DIRECTIVE = re.compile(r"#[ \t]*(fails|replaces|appends|appends-bug):[ \t]*(.*?)[ \t]*$")
JOBS = 2  # notebooks graded at once (each in its own worker process)


# --------------------------------------------------------------------------- mutants
@dataclass
class Mutant:
    name: str
    fails: list[str]
    replaces: dict[str, str] = field(default_factory=dict)  # grade_id -> new source of that answer cell
    appends: list[str] = field(default_factory=list)  # new cells, in the order of the file


def bug_cell(name: str, target: str) -> str:
    """A catalogued bug (one source for appendix A, the bug hunt and the mutants) put in place of ``target``."""
    if name not in bugs.CATALOGUE:
        raise ValueError(f"no bug {name!r} in attnlab.course.bugs.CATALOGUE")
    return inspect.getsource(bugs.CATALOGUE[name].obj) + f"\n\n{target} = {name}\n"


def read_mutant(path: str) -> Mutant:
    """Parse one mutant file (see the module docstring); a malformed file is a clear error."""
    name = os.path.splitext(os.path.basename(path))[0]
    rel = os.path.relpath(path, ROOT)
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines(keepends=True)
    first = DIRECTIVE.match(lines[0]) if lines else None
    if not first or first.group(1) != "fails":
        raise ValueError(f"{rel}: the first line must be `# fails: test_a test_b` (the checks this mutant must fail)")
    mutant = Mutant(name, first.group(2).split())
    section: list[str] | None = None  # the lines of the cell being read
    for number, line in enumerate(lines[1:], start=2):
        match = DIRECTIVE.match(line)
        if match is None:
            if section is not None:
                section.append(line)
            elif line.strip() and not line.lstrip().startswith("#"):
                raise ValueError(f"{rel} line {number}: code before the first `# replaces:` or `# appends:` line")
            continue
        key, value = match.groups()
        if key == "fails":
            raise ValueError(f"{rel} line {number}: `# fails:` belongs on the first line only")
        if key == "replaces":
            if not re.fullmatch(r"\w+", value) or value in mutant.replaces:
                raise ValueError(f"{rel} line {number}: write `# replaces: GRADE_ID`, once per cell, got {line.strip()!r}")
            section = []
            mutant.replaces[value] = section
        elif key == "appends":
            if value:
                raise ValueError(f"{rel} line {number}: `# appends:` takes no value, got {value!r}")
            section = []
            mutant.appends.append(section)
        else:
            words = value.split()
            if len(words) != 3 or words[1] != "as":
                raise ValueError(f"{rel} line {number}: write `# appends-bug: NAME as TARGET`, got {line.strip()!r}")
            mutant.appends.append(bug_cell(words[0], words[2]))
            section = None
    mutant.replaces = {k: "".join(v) for k, v in mutant.replaces.items()}
    mutant.appends = [c if isinstance(c, str) else "".join(c) for c in mutant.appends]
    if not mutant.replaces and not mutant.appends:
        raise ValueError(f"{rel}: changes nothing (no `# replaces:`, `# appends:` or `# appends-bug:` line)")
    return mutant


def mutants_of(assignment: str) -> dict[str, Mutant]:
    """{name: Mutant} of tests/mutants/<assignment>/*.py."""
    paths = sorted(glob.glob(os.path.join(ROOT, "tests", "mutants", assignment, "*.py")))
    return {m.name: m for m in map(read_mutant, paths)}


def mutant_notebook(assignment: str, mutant: Mutant, drop: tuple[str, ...] = ()):
    """The solved notebook with the mutant's changes, and the (1-based) positions of the cells it
    changed. Code cells that start with one of ``drop`` (slow demonstrations no check needs) are
    left out."""
    nb = solved_notebook(assignment)
    if drop:
        nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and c.source.startswith(drop))]
    nb = with_cells(nb, replace=mutant.replaces, append=mutant.appends)
    changed = {index for index, cell in enumerate(nb.cells, start=1)
               if cell.metadata.get("nbgrader", {}).get("grade_id") in mutant.replaces}
    changed |= set(range(len(nb.cells) - len(mutant.appends) + 1, len(nb.cells) + 1))
    return nb, changed


# --------------------------------------------------------------------------- grading
@dataclass
class Graded:
    messages: dict[str, str | None]  # check -> None if it passed, else its message
    cell_errors: list
    score: float | None = None  # from the real grader, when every check ran


def grade_notebook(assignment: str, notebook: str, only: list[str] | None = None) -> Graded:
    """Grade ``notebook``: through the real grader (every check, points) or against the checks
    ``only``. A check that errors (not an AssertionError) raises, and so does a notebook the worker
    could not run at all (a timeout or a crash while starting): a mutant cannot "fail its checks"
    for that reason."""
    module = checks.load(assignment)
    if only is None:
        result = grade(assignment, notebook)
        broken = [t.name for t in result.tests if t.internal_error]
        if result.fatal or broken:
            raise RuntimeError(f"{notebook}: {result.fatal or f'internal error in {broken}'}\n{result.output[-3000:]}")
        return Graded({t.name: None if t.passed else (t.message or "(no message)") for t in result.tests},
                      result.notebook_errors, result.score)
    submission = Submission.from_notebook(notebook, skip_grade_ids=set(module.POINTS),
                                          limits=getattr(module, "LIMITS", None))
    messages = {}
    try:
        for test in only:
            try:
                getattr(module, test)(submission)
                messages[test] = None
            except AssertionError as exc:
                messages[test] = str(exc) or "(no message)"
        if submission.fatal:  # the worker never ran the notebook: no check result above means anything
            raise RuntimeError(f"{notebook}: the worker could not run the notebook: {submission.fatal}")
        return Graded(messages, submission.cell_errors)
    finally:
        submission.close()


# --------------------------------------------------------------------------- the suite
class NamesContracts:
    """Mixed into an ``AssignmentSuite`` whose checks name the broken contract of typical mistakes:
    ``feedback`` = {mutant: {check: words the check's message on that mutant must contain}}."""

    feedback: dict[str, dict[str, str]] = {}

    @pytest.mark.slow
    def test_feedback_names_the_broken_contract(self, graded):
        assert self.feedback, "a suite with NamesContracts declares its feedback"
        for mutant, expected in self.feedback.items():
            for check, words in expected.items():
                message = graded[mutant].messages[check] or ""
                assert words in message, (mutant, check, message)


class AssignmentSuite:
    """The tests every assignment shares. A subclass sets ``ASSIGNMENT`` and may set:

    - ``release_messages``: {check: text its failure on the blank release must contain};
    - ``drop``: prefixes of code cells the mutants leave out (slow demonstrations no check needs);
    - ``exact``: grade each mutant against every check (see the module docstring).

    Assignment-specific tests are methods of the subclass."""

    ASSIGNMENT: str = ""
    release_messages: dict[str, str] = {}
    drop: tuple[str, ...] = ()
    exact: bool = False

    # ---- helpers
    @classmethod
    def mutants(cls) -> dict[str, Mutant]:
        return mutants_of(cls.ASSIGNMENT)

    @classmethod
    def points(cls) -> dict[str, float]:
        return checks.load(cls.ASSIGNMENT).POINTS

    @classmethod
    def source_cells(cls):
        path = os.path.join(ROOT, "solutions", cls.ASSIGNMENT, cls.ASSIGNMENT + ".ipynb")
        return nbformat.read(path, as_version=4).cells

    def pytest_generate_tests(self, metafunc):
        if "mutant" in metafunc.fixturenames:
            metafunc.parametrize("mutant", sorted(self.mutants()))

    @pytest.fixture(scope="class")
    @classmethod
    def graded(cls, tmp_path_factory) -> dict[str, Graded]:
        """{"solved" | "release" | mutant name: Graded}, all graded once, in parallel."""
        assignment = cls.ASSIGNMENT
        folder = tmp_path_factory.mktemp(assignment)
        notebook = assignment + ".ipynb"
        jobs = {
            "solved": (write(solved_notebook(assignment), os.path.join(folder, "solved", notebook)), None),
            "release": (os.path.join(ROOT, "exercises", assignment, notebook), None),
        }
        for name, mutant in cls.mutants().items():
            path = write(mutant_notebook(assignment, mutant, cls.drop)[0], os.path.join(folder, name, notebook))
            jobs[name] = (path, None if cls.exact or not mutant.fails else mutant.fails)
        with ThreadPoolExecutor(JOBS) as pool:
            futures = {name: pool.submit(grade_notebook, assignment, path, only) for name, (path, only) in jobs.items()}
            return {name: future.result() for name, future in futures.items()}

    # ---- without grading
    def test_points_table_matches_the_source_notebook(self):
        graded_cells = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
                        for c in self.source_cells() if c.metadata.get("nbgrader", {}).get("grade")}
        assert graded_cells == self.points(), "run `make exercises`"

    def test_every_mutant_changes_answer_cells_and_names_real_checks(self):
        answers = {c.metadata["nbgrader"]["grade_id"] for c in self.source_cells()
                   if c.metadata.get("nbgrader", {}).get("solution")}
        for name, mutant in self.mutants().items():
            assert set(mutant.replaces) <= answers, f"{name}: no answer cell {sorted(set(mutant.replaces) - answers)}"
            assert set(mutant.fails) <= set(self.points()), f"{name}: no check {sorted(set(mutant.fails) - set(self.points()))}"

    def test_every_check_is_failed_by_some_mutant(self):
        caught = {test for mutant in self.mutants().values() for test in mutant.fails}
        assert set(self.points()) <= caught, f"checks that no mutant fails (they grade nothing): {sorted(set(self.points()) - caught)}"

    # ---- graded
    @pytest.mark.slow
    def test_solution_scores_full_marks(self, graded):
        result = graded["solved"]
        assert all(message is None for message in result.messages.values()), result.messages
        assert result.score == sum(self.points().values())
        assert not result.cell_errors, result.cell_errors

    @pytest.mark.slow
    def test_release_scores_zero_with_clear_messages(self, graded):
        result = graded["release"]
        assert result.score == 0, [name for name, message in result.messages.items() if message is None]
        for check, message in result.messages.items():
            assert "NotImplementedError" in message or "does not define" in message, (check, message)
        for check, text in self.release_messages.items():
            assert text in result.messages[check], (check, result.messages[check])

    @pytest.mark.slow
    def test_mutant_fails_its_checks(self, graded, mutant):
        result, spec = graded[mutant], self.mutants()[mutant]
        failed = {check for check, message in result.messages.items() if message is not None}
        assert failed == set(spec.fails), result.messages
        # A slip may crash a given cell further down, but the mutant's own cells must run: an
        # error there means a broken mutant, not the mistake it stands for.
        _, changed = mutant_notebook(self.ASSIGNMENT, spec, self.drop)
        assert not [e for e in result.cell_errors if e.get("cell") in changed], result.cell_errors
        if result.score is not None:
            points = self.points()
            assert result.score == sum(points.values()) - sum(points[check] for check in failed)
