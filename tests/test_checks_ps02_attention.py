"""ps02_attention through the real grader (`_checks_mutants.AssignmentSuite`): the solution scores
full marks, the release zero, and each mutant in tests/mutants/ps02_attention/ fails exactly the
checks it names and loses exactly their points."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite


class TestPs02(AssignmentSuite):
    ASSIGNMENT = "ps02_attention"
    exact = True
    release_messages = {  # what the blank release's failure says, for two of its checks
        "test_masked_softmax": "NotImplementedError",
        "test_score_std": "does not define `score_std_unscaled`",
    }
