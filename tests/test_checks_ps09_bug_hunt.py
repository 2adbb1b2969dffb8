"""ps09_bug_hunt through the sandboxed worker (`_checks_mutants.AssignmentSuite`): the solution
passes every check, the release none, each mutant in tests/mutants/ps09_bug_hunt/ fails the checks
it must; and the snippets the notebook shows are the anonymous bugs of attnlab.course.bugs the
checks assume."""
from __future__ import annotations

import os

import nbformat

from _checks_mutants import ROOT, AssignmentSuite
from attnlab.course import bugs
from attnlab.course.release import snippet_source
from autograder import checks


class TestPs09(AssignmentSuite):
    ASSIGNMENT = "ps09_bug_hunt"
    release_messages = {  # what the blank release's failure says, for two of its checks
        "test_attention_diagnosis": "does not define `nan_snippet`",
        "test_fixed_attention": "NotImplementedError",
    }

    def test_the_release_shows_each_snippet_anonymously(self):
        module = checks.load(self.ASSIGNMENT)
        nb = nbformat.read(os.path.join(ROOT, "exercises", self.ASSIGNMENT, self.ASSIGNMENT + ".ipynb"), as_version=4)
        sources = [c.source for c in nb.cells if c.cell_type == "code"]
        prefix = {"attention": "attention_", "heads": "heads_", "pe": "pe_"}
        for section, letters in module.SNIPPETS.items():
            for letter, bug in letters.items():
                snippet = snippet_source(bugs.CATALOGUE[bug].obj, prefix[section] + letter)
                assert snippet in sources, f"{section} {letter}: the notebook does not show {bug}"
                assert "BUG" not in snippet and bug not in snippet
