"""ps13_modern_block through the real grader (`_checks_mutants.AssignmentSuite`): the solution scores
full marks, the release zero, each mutant in tests/mutants/ps13_modern_block/ fails exactly the checks
it names, other correct ways to write the answers score full marks, and the feedback on the common
mistakes names the contract they break."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite, NamesContracts


class TestPs13(AssignmentSuite, NamesContracts):
    ASSIGNMENT = "ps13_modern_block"
    exact = True

    feedback = {  # mutant -> {check: words its message must contain}
        "rmsnorm_subtracts_mean": {"test_rmsnorm": "does not subtract the mean"},
        "rmsnorm_eps_outside_the_root": {"test_rmsnorm": "inside the square root"},
        "swiglu_gate_on_the_value_branch": {"test_swiglu": "your SiLU is on w_3's branch"},
        "swiglu_sigmoid_gate": {"test_swiglu": "original GLU"},
        "alibi_slopes_not_geometric": {"test_alibi_slopes": "geometric sequence"},
        "alibi_powers_of_two_formula_everywhere": {"test_alibi_slopes": "not a power of two"},
        "alibi_bias_queries_from_zero": {"test_alibi_bias": "the last length_q"},
        "modern_parameters_full_size_keys": {"test_modern_layer_parameters": "full-size keys and values"},
    }

    def test_count_slips_are_distinct_from_the_answer(self):
        """Each named slip of the count differs from the right count at every hidden size."""
        import torch

        from autograder.checks.test_ps13_modern_block import LAYER_SIZES, _count, _layer_mistakes
        from attnlab.modern import ModernDecoderLayer

        for d, h, kv, d_ff in LAYER_SIZES:
            with torch.device("meta"):
                right = _count(ModernDecoderLayer(d, h, d_ff, num_kv_heads=kv))
            assert sum(value == right for value in _layer_mistakes(d, h, kv, d_ff).values()) <= (1 if kv == h else 0)
