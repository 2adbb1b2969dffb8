"""ps02_attention through the real grader (`_checks_mutants.AssignmentSuite`): the solution scores
full marks, the release zero, and each mutant in tests/mutants/ps02_attention/ fails exactly the
checks it names and loses exactly their points; a common mistake's message names its contract."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite, NamesContracts


class TestPs02(AssignmentSuite, NamesContracts):
    ASSIGNMENT = "ps02_attention"
    exact = True
    release_messages = {  # what the blank release's failure says, for two of its checks
        "test_masked_softmax": "NotImplementedError",
        "test_score_std": "does not define `score_std_unscaled`",
    }
    feedback = {  # mutant -> {check: words its message must contain}
        "softmax_wrong_axis": {"test_attention_values": "softmax runs over the keys (the last axis)"},
        "masked_softmax_wrong_axis": {"test_masked_softmax": "over the last axis (the keys)"},
        "scale_by_d_k_not_sqrt": {"test_attention_mask": "divided by sqrt(d_k), not by d_k"},
        "no_scaling": {"test_attention_values": "look unscaled"},
        "scale_by_d_v": {"test_attention_values": "not of the values"},
        "inverted_mask": {"test_attention_mask": "looks inverted"},
        "float32_inside": {"test_attention_values": "computed in float32 and cast back"},
        "swapped_outputs": {"test_attention_values": "(output, weights), in this order"},
        "dropout_ignored": {"test_attention_dropout": "dropped nothing"},
        "dropout_not_rescaled": {"test_attention_dropout": "divided by 1 - dropout_p"},
        "dropout_on_the_output": {"test_attention_dropout": "applied to the output"},
        "dropout_on_the_scores": {"test_attention_dropout": "not the scores"},
        "dropout_always_on": {"test_attention_dropout": "with dropout_p=0 nothing is dropped"},
        "variance_not_std": {"test_score_std": "standard deviation"},
        "std_sampled_and_variance_of_one_factor": {"test_score_std": "sample estimate",
                                                   "test_score_variance": "variance of such a product"},
        "general_scaled_by_sqrt_d_k": {"test_general_attention": "not scaled"},
        "general_w_transposed_and_predicts_unchanged": {"test_general_attention": "W transposed"},
        "general_inverted_mask": {"test_general_attention": "looks inverted"},
    }

