"""ps08_training through the sandboxed worker: the solution passes every check, the release none,
and each mutant (tests/mutants/ps08_training/) fails the checks it must. The notebook's training
demonstration (about 10 s) runs in the solved notebook only; the mutants leave it out."""
from __future__ import annotations

import pytest

from _checks_mutants import assignment_tests, file_mutants

ASSIGNMENT = "ps08_training"
MUTANTS = file_mutants(ASSIGNMENT)
pytestmark = pytest.mark.slow
RELEASE_MESSAGES = {  # what the blank release's failure says, for two of its checks
    "test_train_step": "NotImplementedError",
    "test_peak_learning_rate": "does not define `peak_learning_rate`",
}
globals().update(assignment_tests(ASSIGNMENT, MUTANTS, RELEASE_MESSAGES, drop=('run = train_reverse_task',)))  # the shared tests


def test_the_checked_loss_is_the_training_loops():
    """The loss the checks expect is the one attnlab.train.loop computes with F.cross_entropy."""
    import torch
    import torch.nn.functional as F

    from autograder.checks.test_ps08_training import label_smoothed_cross_entropy

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 7, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 7, (3, 5), generator=gen)
    for smoothing in (0.0, 0.1, 0.4):
        builtin = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=0, label_smoothing=smoothing)
        torch.testing.assert_close(label_smoothed_cross_entropy(logits, target, 0, smoothing), builtin)


def test_the_checked_schedule_is_the_training_loops():
    from autograder.checks.test_ps08_training import schedule_values
    from attnlab.train.loop import inverse_sqrt_lambda

    assert schedule_values(4, 16)[:5] == [0.25, 0.5, 0.75, 1.0, (4 / 5) ** 0.5]
    assert schedule_values(30, 100) == [inverse_sqrt_lambda(30)(s) for s in range(100)]
