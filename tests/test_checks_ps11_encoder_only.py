"""ps11_encoder_only through the real grader (`_checks_mutants.AssignmentSuite`): the solution scores
full marks, the release zero, each mutant in tests/mutants/ps11_encoder_only/ fails exactly the checks it
names, another correct way to write the answers scores full marks, and the feedback on the common
mistakes names the contract they break."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite, NamesContracts


class TestPs11(AssignmentSuite, NamesContracts):
    ASSIGNMENT = "ps11_encoder_only"
    exact = True

    feedback = {  # mutant -> {check: words its message must contain}
        "masks_padding": {"test_mlm_mask_positions": "padding is never chosen"},
        "floor_count": {"test_mlm_mask_positions": "round(0.15 x"},
        "always_mask": {"test_mlm_mask_replacements": "80 / 10 / 10"},
        "loss_over_all_positions": {"test_mlm_loss": "chosen positions only"},
        "pooling_slips": {"test_head_first": "position 0", "test_head_mean": "padding included"},
    }
