"""ps04_multihead through the real grader (`_checks_mutants.AssignmentSuite`): the solution scores
full marks, the release zero, and each mutant in tests/mutants/ps04_multihead/ (several of them the
catalogued bugs of attnlab.course.bugs) fails exactly the checks it names."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite


class TestPs04(AssignmentSuite):
    ASSIGNMENT = "ps04_multihead"
    exact = True
