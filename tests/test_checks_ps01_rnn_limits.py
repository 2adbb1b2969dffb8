"""ps01_rnn_limits through the real grader (`_checks_mutants.AssignmentSuite`): the solution scores
full marks, the release zero, and each mutant in tests/mutants/ps01_rnn_limits/ fails exactly the
checks it names and loses exactly their points; a common mistake's message names its contract."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite, NamesContracts


class TestPs01(AssignmentSuite, NamesContracts):
    ASSIGNMENT = "ps01_rnn_limits"
    exact = True
    feedback = {  # mutant -> {check: words its message must contain}
        "not_flipped": {"test_gradient_norm_values": "entry 0 = the last input"},
        "summed_over_batch_bottleneck_grows_and_attention_sequential":
            {"test_gradient_norm_values": "averaged over the batch, not summed"},
        "loss_is_the_mean_of_the_last_outputs": {"test_gradient_norm_values": "SUM of the last step's outputs"},
        "loss_on_the_first_step": {"test_gradient_norm_values": "on the LAST step's outputs"},
        "bptt_multiplies_by_w_transposed": {"test_state_gradient_norms": "TRANSPOSE of W_hh"},
        "bptt_derivative_of_the_previous_state": {"test_state_gradient_norms": "state the step produces"},
        "bptt_without_the_tanh_derivative": {"test_state_gradient_norms": "tanh's derivative"},
        "steps_rounded_down_and_answer_not_a_choice": {"test_steps_to_fade": "FIRST distance",
                                                        "test_large_inputs_effect": "expected one of"},
    }

