"""ps09_bug_hunt through the sandboxed worker: the solution passes every check, the release none,
each mutant (tests/mutants/ps09_bug_hunt/) fails exactly the checks it must; and the snippets the
notebook shows are the anonymous bugs of attnlab.course.bugs the checks assume."""
from __future__ import annotations

import os

import nbformat
import pytest

from _checks_mutants import ROOT, assignment_tests, file_mutants
from attnlab.course import bugs
from autograder import checks
from attnlab.course.release import snippet_source

ASSIGNMENT = "ps09_bug_hunt"
MUTANTS = file_mutants(ASSIGNMENT)
pytestmark = pytest.mark.slow
RELEASE_MESSAGES = {  # what the blank release's failure says, for two of its checks
    "test_attention_diagnosis": "does not define `nan_snippet`",
    "test_fixed_attention": "NotImplementedError",
}
globals().update(assignment_tests(ASSIGNMENT, MUTANTS, RELEASE_MESSAGES))  # the shared tests


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
