"""ps03_self_attention through the real grader (`_checks_mutants.AssignmentSuite`): the solution
scores full marks, the release zero, and each mutant in tests/mutants/ps03_self_attention/ fails
exactly the checks it names and loses exactly their points."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite


class TestPs03(AssignmentSuite):
    ASSIGNMENT = "ps03_self_attention"
    exact = True
