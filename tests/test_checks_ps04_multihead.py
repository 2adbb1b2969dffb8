"""ps04_multihead through the real grader (`_checks_mutants.AssignmentSuite`): the solution scores
full marks, the release zero, each mutant in tests/mutants/ps04_multihead/ (several of them the
catalogued bugs of attnlab.course.bugs, two from the seed tutorials) fails exactly the checks it
names, other correct ways to write the answers score full marks, and the feedback on the common
mistakes names the contract they break."""
from __future__ import annotations

import pytest

from _checks_mutants import AssignmentSuite, NamesContracts


class TestPs04(AssignmentSuite, NamesContracts):
    ASSIGNMENT = "ps04_multihead"
    exact = True

    feedback = {  # mutant -> {check: words its message must contain}
        "heads_without_projections": {"test_mha_self_attention": "w_q, w_k and w_v unused", "test_mha_dropout": "in training"},
        "projected_twice": {"test_mha_cross_attention": "projected once"},
        "scale_by_d_model": {"test_mha_mask": "sqrt(d_head)"},
        "wrong_head_split": {"test_mha_split_merge": "mixes positions", "test_mha_self_attention": "mixes positions"},
        "no_output_projection": {"test_mha_self_attention": "output projection w_o"},
        "key_from_value_projection": {"test_mha_self_attention": "projected with w_k"},
        "inverted_mask": {"test_mha_mask": "'may attend'"},
        "dropout_in_eval_mode": {"test_mha_dropout": "eval mode turns dropout off"},
        "dropout_without_rescaling": {"test_mha_dropout": "1 / (1 - dropout)"},
        "packed_per_head_blocks": {"test_packed_self_attention": "one [query, key, value] block per head"},
        "cross_attention_counted_as_self_and_one_head_intuition": {"test_mha_flops": "len_k key and value positions"},
    }

    @pytest.mark.slow
    def test_derive_and_predict_feedback_keeps_the_answer_hidden(self, graded):
        messages = graded["cross_attention_counted_as_self_and_one_head_intuition"].messages
        d, lq, lk = 16, 5, 9  # the first size the check asks for
        assert str(4 * lq * d * d + 4 * lk * d * d + 4 * lq * lk * d) not in messages["test_mha_flops"]
        assert "True" not in messages["test_mha_unchanged"] and "False" not in messages["test_mha_unchanged"]
