"""ps08_training through the sandboxed worker (`_checks_mutants.AssignmentSuite`): the solution
passes every check, the release none, and each mutant in tests/mutants/ps08_training/ fails the
checks it must (the right variants among them pass them all). The notebook's training demonstration
(about 10 s) runs in the solved notebook only; the mutants leave it out."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from _checks_mutants import AssignmentSuite


class TestPs08(AssignmentSuite):
    ASSIGNMENT = "ps08_training"
    drop = ("run = train_reverse_task",)
    release_messages = {  # what the blank release's failure says, for two of its checks
        "test_train_step": "NotImplementedError",
        "test_peak_learning_rate": "NotImplementedError",
    }

    def test_the_checked_loss_is_the_training_loops(self):
        """The loss the checks expect (attnlab.objectives, which the training loop uses) equals F.cross_entropy's."""
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

    @pytest.mark.parametrize("vocab_size, smoothing", [(10, 0.1), (37, 0.3), (5, 0.0), (8, 1.0)])
    def test_the_measured_loss_floor_is_the_entropy_of_q_and_no_prediction_beats_it(self, vocab_size, smoothing):
        """The floor the check measures (the loss at p = q) is H(q), and gradient descent from random
        logits does not go below it."""
        from autograder.checks.test_ps08_training import measured_loss_floor

        q = torch.full((vocab_size,), smoothing / vocab_size, dtype=torch.float64)
        q[0] += 1 - smoothing
        entropy = -torch.special.xlogy(q, q).sum().item()
        assert math.isclose(measured_loss_floor(vocab_size, smoothing), entropy, rel_tol=1e-9, abs_tol=1e-12)
        logits = torch.randn(vocab_size, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
        optimizer = torch.optim.Adam([logits], lr=0.1)
        for _ in range(500):
            loss = F.cross_entropy(logits[None], torch.tensor([0]), label_smoothing=smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert entropy - 1e-9 <= loss.item() <= entropy + 0.05

    def test_the_measured_peak_is_the_papers_at_step_warmup(self):
        from autograder.checks.test_ps08_training import measured_peak

        for d_model, warmup in ((512, 4000), (64, 1), (128, 250)):
            assert math.isclose(measured_peak(d_model, warmup), (d_model * warmup) ** -0.5, rel_tol=1e-12)

    def test_the_cosine_schedule_warms_up_then_decays_to_final(self):
        from attnlab.objectives import warmup_cosine_lambda

        factor = warmup_cosine_lambda(4, 12, 0.1)
        values = [factor(step) for step in range(16)]
        assert values[:4] == [0.25, 0.5, 0.75, 1.0]
        assert math.isclose(values[7], 0.55)  # s = 8, half-way from the peak (s = 4) to total_steps (s = 12)
        assert values[11:] == [0.1] * 5
        assert all(a >= b for a, b in zip(values[3:], values[4:]))
        with pytest.raises(ValueError):
            warmup_cosine_lambda(10, 10)
