"""ps08_training through the sandboxed worker (`_checks_mutants.AssignmentSuite`): the solution
passes every check, the release none, and each mutant in tests/mutants/ps08_training/ fails the
checks it must. The notebook's training demonstration (about 10 s) runs in the solved notebook
only; the mutants leave it out."""
from __future__ import annotations

from _checks_mutants import AssignmentSuite


class TestPs08(AssignmentSuite):
    ASSIGNMENT = "ps08_training"
    drop = ("run = train_reverse_task",)
    release_messages = {  # what the blank release's failure says, for two of its checks
        "test_train_step": "NotImplementedError",
        "test_peak_learning_rate": "does not define `peak_learning_rate`",
    }

    def test_the_checked_loss_is_the_training_loops(self):
        """The loss the checks expect (attnlab.objectives, which the training loop uses) equals F.cross_entropy's."""
        import torch
        import torch.nn.functional as F

        from autograder.checks.test_ps08_training import label_smoothed_cross_entropy

        gen = torch.Generator().manual_seed(0)
        logits = torch.randn(3, 5, 7, generator=gen, dtype=torch.float64)
        target = torch.randint(0, 7, (3, 5), generator=gen)
        for smoothing in (0.0, 0.1, 0.4):
            builtin = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=0, label_smoothing=smoothing)
            torch.testing.assert_close(label_smoothed_cross_entropy(logits, target, 0, smoothing), builtin)

    def test_the_checked_schedule_is_the_training_loops(self):
        from autograder.checks.test_ps08_training import schedule_values
        from attnlab.objectives import inverse_sqrt_lambda  # the schedule attnlab.train.loop trains with

        assert schedule_values(4, 16)[:5] == [0.25, 0.5, 0.75, 1.0, (4 / 5) ** 0.5]
        assert schedule_values(30, 100) == [inverse_sqrt_lambda(30)(s) for s in range(100)]
