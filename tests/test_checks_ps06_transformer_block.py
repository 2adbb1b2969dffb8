"""ps06_transformer_block through the sandboxed worker: the solution passes every check, the release
none, and each mutant (hand-written ones in tests/mutants/ps06_transformer_block/ and the layer bugs
of attnlab.course.bugs) fails exactly the checks it must."""
from __future__ import annotations

import pytest

from _checks_mutants import assignment_tests, bug_mutant, file_mutants

ASSIGNMENT = "ps06_transformer_block"
DECODER = ["test_decoder_post_norm", "test_decoder_pre_norm"]
ENCODER = ["test_encoder_post_norm", "test_encoder_pre_norm"]
MUTANTS = {
    **file_mutants(ASSIGNMENT),
    "bug_encoder_layer_no_residual": bug_mutant("encoder_layer_no_residual", "EncoderLayer", ENCODER),
    "bug_decoder_layer_no_residual": bug_mutant("decoder_layer_no_residual", "DecoderLayer", DECODER),
    "bug_decoder_layer_cross_attends_to_itself": bug_mutant("decoder_layer_cross_attends_to_itself", "DecoderLayer", DECODER),
}
pytestmark = pytest.mark.slow
RELEASE_MESSAGES = {  # what the blank release's failure says, for two of its checks
    "test_decoder_post_norm": "NotImplementedError",
    "test_decoder_layer_parameters": "does not define `decoder_layer_parameters`",
}
globals().update(assignment_tests(ASSIGNMENT, MUTANTS, RELEASE_MESSAGES))  # the shared tests
