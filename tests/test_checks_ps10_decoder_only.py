"""ps10_decoder_only through the real grader (`_checks_mutants.AssignmentSuite`): the solution scores
full marks, the release zero, each mutant in tests/mutants/ps10_decoder_only/ fails exactly the checks
it names (the off-by-one loss, top-p without the crossing token, the temperature after the softmax, a
cache fed at position 0, ...), other correct ways to write the answers score full marks, and the
feedback on the common mistakes names the contract they break."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite, NamesContracts


class TestPs10(AssignmentSuite, NamesContracts):
    ASSIGNMENT = "ps10_decoder_only"
    exact = True

    feedback = {  # mutant -> {check: words its message must contain}
        "loss_without_shift": {"test_causal_lm_loss": "predict the NEXT token"},
        "top_p_drops_crossing_token": {"test_top_p": "INCLUDING the token"},
        "temperature_after_softmax": {"test_temperature": "divides the LOGITS"},
        "top_k_keeps_ties_and_sorted_draw": {"test_top_k": "broken by index", "test_sample_replay": "INDEX order"},
        "cache_forgets_positions": {"test_generate_cached": "its own position"},
        "generate_without_prompt": {"test_generate": "the prompt followed by the new tokens"},
        "cache_never_read": {"test_generate_cached": "positions per row"},
    }
