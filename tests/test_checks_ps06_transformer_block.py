"""ps06_transformer_block through the sandboxed worker (`_checks_mutants.AssignmentSuite`): the
solution passes every check, the release none, and each mutant in
tests/mutants/ps06_transformer_block/ (hand-written ones and the layer bugs of attnlab.course.bugs)
fails the checks it must."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite


class TestPs06(AssignmentSuite):
    ASSIGNMENT = "ps06_transformer_block"
    release_messages = {  # what the blank release's failure says, for two of its checks
        "test_decoder_post_norm": "NotImplementedError",
        "test_decoder_layer_parameters": "does not define `decoder_layer_parameters`",
    }
