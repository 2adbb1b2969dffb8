"""ps01_rnn_limits through the real grader (`_checks_mutants.AssignmentSuite`): the solution scores
full marks, the release zero, and each mutant in tests/mutants/ps01_rnn_limits/ fails exactly the
checks it names and loses exactly their points."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite


class TestPs01(AssignmentSuite):
    ASSIGNMENT = "ps01_rnn_limits"
    exact = True
