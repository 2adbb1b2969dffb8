"""ps12_efficient_attention through the real grader (`_checks_mutants.AssignmentSuite`): the solution
scores full marks, the release zero, each mutant in tests/mutants/ps12_efficient_attention/ fails
exactly the checks it names (the running sum not rescaled, the maximum not subtracted, key/value heads
tiled instead of grouped, a mask tile cut from the wrong queries, ...), other correct ways to write the
answers score full marks, and the feedback on the common mistakes names the contract they break."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite, NamesContracts


class TestPs12(AssignmentSuite, NamesContracts):
    ASSIGNMENT = "ps12_efficient_attention"
    exact = True

    feedback = {  # mutant -> {check: words its message must contain}
        "running_sum_not_rescaled": {"test_online_softmax_blocks": "multiplied by exp(m - m')"},
        "max_not_subtracted": {"test_online_softmax_large_scores": "NaN or infinite"},
        "kv_heads_tiled": {"test_gqa_grouping": "consecutive query heads share"},
        "cache_after_the_repeat": {"test_gqa_cache": "only after the cache"},
    }
