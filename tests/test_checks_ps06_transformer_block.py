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

    def test_the_predicted_experiment_does_not_depend_on_the_draw(self):
        """The truth of section 4 is a property of the modules, not of one set of random weights."""
        from autograder.checks.test_ps06_transformer_block import changed_positions_truth

        assert len({repr(changed_positions_truth(seed)) for seed in (606, 1, 2, 3)}) == 1

    def test_encoder_count_slips_are_distinct_from_the_answer(self):
        """Each named slip of the count differs from the right count at every hidden size, so that naming
        it never rejects a right answer."""
        import torch

        from autograder.checks.test_ps06_transformer_block import ENCODER_SIZES, _count, _layer_mistakes
        from attnlab.transformer import EncoderLayer

        for d_model, d_ff in ENCODER_SIZES:
            with torch.device("meta"):
                layer = EncoderLayer(d_model, 1, d_ff)
            assert all(value != _count(layer) for value in _layer_mistakes(layer).values())

