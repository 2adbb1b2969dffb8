"""Checks for ps08_training: label-smoothed cross-entropy, the warmup/inverse-sqrt schedule, one
training step, and a short training run of the learner's model on the reverse task.

What the learner writes is the course's own (``attnlab.objectives``: the notebook's solutions are filled
from it, and the course's training loop trains with it). The helpers here (``schedule_values``,
``train_steps``, ``reverse_task_batches``, ``train_reverse_task``, ...) are shown in the notebook
from this file and call the learner's functions there; here they run on the reference.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from autograder.checks import expect
from autograder.protocol import Limits
from attnlab.decoding import greedy_decode
from attnlab.objectives import inverse_sqrt_lambda, label_smoothed_cross_entropy, make_optimizer, train_step
from attnlab.tokens import BOS_ID, EOS_ID, PAD_ID
from attnlab.train.data import reverse_batch
from attnlab.transformer import Transformer, TransformerConfig

ASSIGNMENT = "ps08_training"

POINTS = {
    "test_label_smoothing": 3,
    "test_schedule": 2,
    "test_peak_learning_rate": 1,
    "test_train_step": 3,
    "test_training_run": 2,
}

# A short training run happens inside the worker: give it time.
LIMITS = Limits(startup_s=180, call_s=120, cpu_s=600)


# ------------------------------------------------------------------ given helpers (shown in the notebook)
def schedule_values(warmup: int, steps: int) -> list[float]:
    """The learning-rate multipliers of the first ``steps`` steps: what the grader reads of your schedule."""
    factor = inverse_sqrt_lambda(warmup)
    return [float(factor(step)) for step in range(steps)]


def train_steps(config: dict, weights: dict, batches: list, lr: float, smoothing: float, clip: float) -> list[float]:
    """A model with ``weights``, trained with your ``train_step`` on each ``(src, tgt)`` batch in turn.

    The learning rate decays as lr / (1 + step) here, so that this test does not depend on your schedule.
    Returns the losses.
    """
    model = Transformer(TransformerConfig(**config)).double()
    model.load_state_dict(weights)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1.0 + step))
    return [train_step(model, optimizer, scheduler, src, tgt, config["pad_id"], smoothing, clip) for src, tgt in batches]


def reverse_task_batches(n_batches: int, batch_size: int = 32, seed: int = 0, max_len: int = 5,
                         letters: int = 6) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of the reverse task, from the course's generator ``reverse_batch``: src = 1..max_len random
    letters (ids 3, 4, ...), padded with 0; tgt = BOS, the letters reversed, EOS, padded with 0."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        src, tgt_in, tgt_out, _ = reverse_batch(batch_size, 1, max_len, letters, generator=gen)
        batches.append((src, torch.cat([tgt_in[:, :1], tgt_out], dim=1)))  # tgt (B, S + 2): BOS, reversed, EOS
    return batches


def reverse_task_model() -> nn.Module:
    """The small model of the reverse task: one encoder and one decoder layer, d_model = 32."""
    return Transformer(TransformerConfig(src_vocab_size=9, tgt_vocab_size=9, d_model=32, num_heads=2, num_encoder_layers=1,
                                         num_decoder_layers=1, d_ff=64, dropout=0.0, max_len=16, pad_id=PAD_ID))


def reverse_exact_match(model, seed: int = 1000, n: int = 200) -> float:
    """The fraction of ``n`` new words that greedy decoding reverses exactly."""
    (src, tgt), = reverse_task_batches(1, batch_size=n, seed=seed)
    out = greedy_decode(model, src, BOS_ID, EOS_ID, max_len=tgt.size(1))  # (n, <= max_len + 2)
    want = tgt[:, 1:]
    width = max(out.size(1), want.size(1))
    pad = lambda x: torch.cat([x, x.new_full((x.size(0), width - x.size(1)), PAD_ID)], dim=1)  # noqa: E731
    return (pad(out) == pad(want)).all(dim=1).double().mean().item()


def train_reverse_task(steps: int = 200, seed: int = 0) -> dict:
    """Train a small model on the reverse task with your functions. Returns the losses, the exact
    match of greedy decoding on 200 new words, and the trained weights (the grader tests them too)."""
    torch.manual_seed(seed)
    model = reverse_task_model()
    optimizer, scheduler = make_optimizer(model, lr=3e-3, warmup=30)
    losses = [train_step(model, optimizer, scheduler, src, tgt, PAD_ID, smoothing=0.1, clip=1.0)
              for src, tgt in reverse_task_batches(steps, seed=seed)]
    return {"losses": losses, "exact_match": reverse_exact_match(model), "weights": dict(model.state_dict())}


# ------------------------------------------------------------------ checks
def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_label_smoothing(submission):
    gen = _gen(801)
    for (B, T, V), smoothing, dtype in (((2, 5, 7), 0.0, torch.float64), ((3, 4, 11), 0.1, torch.float64),
                                        ((4, 6, 5), 0.3, torch.float32)):
        logits = 3 * torch.randn(B, T, V, generator=gen, dtype=dtype)
        target = torch.randint(1, V, (B, T), generator=gen)
        target[0, -2:] = PAD_ID  # padding positions must not count
        target[-1, 1:] = PAD_ID
        got = submission.call("label_smoothed_cross_entropy", logits, target, PAD_ID, smoothing)
        want = label_smoothed_cross_entropy(logits, target, PAD_ID, smoothing)
        expect.tensor(got, want, f"label_smoothed_cross_entropy(logits {(B, T, V)} {dtype}, target with padding, "
                                 f"pad_id=0, smoothing={smoothing})")
    logits = torch.randn(2, 3, 6, generator=gen, dtype=torch.float64)
    target = torch.tensor([[4, 4, 4], [5, 5, 5]])
    got = submission.call("label_smoothed_cross_entropy", logits, target, 4, 0.2)
    expect.tensor(got, label_smoothed_cross_entropy(logits, target, 4, 0.2),
                  "label_smoothed_cross_entropy(..., pad_id=4, smoothing=0.2)")


def test_schedule(submission):
    for warmup, steps in ((10, 40), (4000, 8), (1, 5), (100, 300)):
        got = submission.call("schedule_values", warmup, steps)
        if not isinstance(got, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in got):
            raise expect.CheckFailed(f"schedule_values({warmup}, {steps}): expected a list of numbers, got {expect.describe(got)}; "
                                     "inverse_sqrt_lambda(warmup) should return a function of the step")
        expect.tensor(torch.tensor(got, dtype=torch.float64), torch.tensor(schedule_values(warmup, steps), dtype=torch.float64),
                      f"the multipliers of inverse_sqrt_lambda({warmup}) at steps 0..{steps - 1}", atol=1e-9, rtol=1e-7)


def test_peak_learning_rate(submission):
    expect.number(submission.get("peak_learning_rate"), 512 ** -0.5 * 4000 ** -0.5, "peak_learning_rate",
                  atol=0, rtol=1e-3)


def test_train_step(submission):
    config = dict(src_vocab_size=9, tgt_vocab_size=9, d_model=16, num_heads=2, num_encoder_layers=1,
                  num_decoder_layers=1, d_ff=32, dropout=0.0, max_len=16, pad_id=PAD_ID)
    torch.manual_seed(802)
    weights = dict(Transformer(TransformerConfig(**config)).double().state_dict())
    batches = reverse_task_batches(4, batch_size=6, seed=802)
    for smoothing, clip in ((0.0, 0.0), (0.1, 0.5)):
        want = train_steps(config, weights, batches, 1e-2, smoothing, clip)
        got = submission.call("train_steps", config, weights, batches, 1e-2, smoothing, clip)
        if not isinstance(got, list) or len(got) != len(want):
            raise expect.CheckFailed(f"train_steps(...) over {len(want)} batches: expected a list of {len(want)} losses, "
                                     f"got {expect.describe(got)}")
        for step, (g, w) in enumerate(zip(got, want)):
            expect.number(g, w, f"the loss train_step returned at step {step} (smoothing={smoothing}, clip={clip}); "
                                "step 0 checks the forward pass and the loss, later steps the update",
                          atol=1e-7, rtol=1e-6)


def test_training_run(submission):
    steps = 200
    got = submission.call("train_reverse_task", steps, 0)
    if not isinstance(got, dict) or not isinstance(got.get("losses"), list) or len(got["losses"]) != steps:
        raise expect.CheckFailed(f"train_reverse_task({steps}, 0): expected a dict with {steps} losses, got {expect.describe(got)}")
    losses = got["losses"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in losses):
        raise expect.CheckFailed("train_reverse_task: some losses are not finite numbers")
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    expect.true(last < 0.5 * first, f"the training loss did not come down: {first:.3f} over the first 20 steps, "
                                    f"{last:.3f} over the last 20 (it should at least halve)")
    # The trained weights are tested here, on new words, by the course's model and decoder.
    weights = got.get("weights")
    model = reverse_task_model()
    if not isinstance(weights, dict) or set(weights) != set(model.state_dict()):
        raise expect.CheckFailed("train_reverse_task: the trained weights (\"weights\") are missing or do not have the "
                                 "parameter names of the course's Transformer")
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError) as exc:
        raise expect.CheckFailed(f"train_reverse_task: the trained weights do not fit the model: {str(exc)[:300]}") from None
    match = reverse_exact_match(model, seed=2000)
    expect.true(match >= 0.5, f"after {steps} steps the trained model reverses {match:.0%} of 200 new words exactly "
                              "(expected at least 50%)")
