"""ps03_self_attention through the real grader (`_checks_mutants.AssignmentSuite`): the solution
scores full marks, the release zero, and each mutant in tests/mutants/ps03_self_attention/ fails
exactly the checks it names and loses exactly their points; a common mistake's message names its contract."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite, NamesContracts


class TestPs03(AssignmentSuite, NamesContracts):
    ASSIGNMENT = "ps03_self_attention"
    exact = True
    feedback = {  # mutant -> {check: words its message must contain}
        "d_v_defaults_to_d_model": {"test_self_attention_shapes": "when d_v is None, it is d_k"},
        "scaled_by_sqrt_d_model": {"test_self_attention_values": "not d_model"},
        "no_scaling_and_count_without_v": {"test_self_attention_values": "look unscaled"},
        "queries_and_keys_swapped": {"test_self_attention_values": "queries and keys swapped"},
        "no_query_key_projections_and_additive_without_tanh": {"test_self_attention_values": "not x with itself",
                                                               "test_additive_values": "no tanh"},
        "key_from_value_projection_and_additive_ignores_mask": {"test_self_attention_values": "not from w_v",
                                                                "test_additive_mask": "look ignored"},
        "outputs_swapped_and_additive_softmax_over_queries": {"test_self_attention_values": "(output, weights), in this order",
                                                              "test_additive_values": "over the keys (the last axis)"},
        "self_attention_float32_inside": {"test_self_attention_values": "computed in float32 and cast back"},
        "parameters_with_biases": {"test_self_attention_parameters": "bias-free"},
        "parameters_ignore_d_v_and_memory_order_permuted": {"test_self_attention_parameters": "need not be d_k"},
        "cross_keys_and_values_from_x": {"test_cross_attention": "that is self-attention"},
        "cross_values_from_x_and_causal_unchanged": {"test_cross_attention": "values come from memory"},
        "cross_roles_swapped": {"test_cross_attention": "the other way round"},
        "cross_ignores_mask": {"test_cross_attention": "the mask looks ignored"},
    }

