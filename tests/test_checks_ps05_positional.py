"""ps05_positional through the real grader (`_checks_mutants.AssignmentSuite`): the solution scores
full marks, the release zero, each mutant in tests/mutants/ps05_positional/ fails exactly the checks
it names, and other correct ways to write the answers (a mutant that names no check) score full marks."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite


class TestPs05(AssignmentSuite):
    ASSIGNMENT = "ps05_positional"
    exact = True
