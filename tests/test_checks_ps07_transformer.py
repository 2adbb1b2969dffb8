"""ps07_transformer through the sandboxed worker (`_checks_mutants.AssignmentSuite`): the solution
passes every check, the release none, and each mutant in tests/mutants/ps07_transformer/ (hand-written
ones and the whole-model bugs of attnlab.course.bugs) fails the checks it must."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite


class TestPs07(AssignmentSuite):
    ASSIGNMENT = "ps07_transformer"
    release_messages = {  # what the blank release's failure says, for two of its checks
        "test_greedy_decode": "NotImplementedError",
        "test_big_parameters": "does not define `big_parameters`",
    }

    def test_the_toy_model_cases_cover_every_way_to_stop(self):
        """The greedy check's cases include a batch where every row stops early, one where no row
        produces EOS, and batches where some rows stop and some do not."""
        import torch

        from autograder.checks.test_ps07_transformer import BOS_ID, EOS_ID, _gen, _tokens, greedy_decode_toy

        gen = _gen(707)
        kinds = set()
        for seed, batch, max_len in ((0, 4, 6), (1, 5, 8), (2, 3, 3), (5, 6, 10)):
            out = greedy_decode_toy(seed, _tokens(gen, [5] * batch, 5, 8), BOS_ID, EOS_ID, max_len)
            stopped = (out == EOS_ID).any(dim=1)
            kinds.add("all stop early" if bool(stopped.all()) and out.size(1) < max_len
                      else "none stops" if not bool(stopped.any()) else "mixed" if not bool(stopped.all()) else "other")
            assert torch.equal(out[:, :1] == BOS_ID, torch.zeros_like(out[:, :1], dtype=torch.bool))
        assert {"all stop early", "none stops", "mixed"} <= kinds

    def test_the_predicted_experiments_do_not_depend_on_the_draw(self):
        """The truths of section 4 are properties of the model, not of one set of random weights, and
        both answers occur."""
        from autograder.checks.test_ps07_transformer import what_changes_truth

        truths = {repr(what_changes_truth(seed)) for seed in (708, 1, 2)}
        assert len(truths) == 1
        assert set(what_changes_truth().values()) == {"changed", "unchanged"}

    def test_the_measured_kv_cache_is_two_vectors_of_d_model_per_token_and_layer(self):
        """The grader measures the caches; here the measurement meets the notebook's formula."""
        from autograder.checks.test_ps07_transformer import KV_CASES, measured_kv_cache_values

        for num_layers, d_model, batch, length, _ in KV_CASES:
            assert measured_kv_cache_values(num_layers, d_model, batch, length) == 2 * num_layers * d_model * batch * length

