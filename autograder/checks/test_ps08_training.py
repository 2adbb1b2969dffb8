"""Checks for ps08_training: label-smoothed cross-entropy and the lowest loss it allows, the
warmup/inverse-sqrt schedule and its peak, a warmup + cosine schedule described only in words, one
training step, and a short training run of the learner's model on the reverse task.

What the learner implements is the course's own (``attnlab.objectives``: the notebook's solutions are
filled from it, and the course's training loop trains with it). The two derived quantities
(``smoothed_loss_floor``, ``peak_learning_rate``) are checked against a measurement made here (the loss at
p = q, the largest value of the paper's schedule over its steps), not against the learner's own numbers.
The helpers here (``schedule_values``, ``train_steps``, ``reverse_task_batches``, ``train_reverse_task``,
...) are shown in the notebook from this file and call the learner's functions there; here they run
on the reference.

When an answer is wrong in a common way (padding counted, ε spread over V - 1 classes, the schedule's
step counted from 0, the decoder reading the unshifted target, ...), the message names the broken
contract; the value a derive task expects never appears in a message.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from attnlab.course.messages import _
from autograder.checks import expect
from autograder.protocol import Limits
from attnlab.decoding import greedy_decode
from attnlab.objectives import (
    inverse_sqrt_lambda,
    label_smoothed_cross_entropy,
    make_optimizer,
    train_step,
    warmup_cosine_lambda,
)
from attnlab.tokens import BOS_ID, EOS_ID, PAD_ID
from attnlab.train.data import reverse_batch
from attnlab.transformer import Transformer, TransformerConfig

ASSIGNMENT = "ps08_training"

POINTS = {
    "test_label_smoothing": 3,
    "test_smoothed_loss_floor": 2,
    "test_schedule": 2,
    "test_peak_learning_rate": 1,
    "test_cosine_schedule": 2,
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


def cosine_schedule_values(warmup: int, total_steps: int, final: float, steps: int) -> list[float]:
    """The multipliers of your warmup + cosine schedule over the first ``steps`` steps."""
    factor = warmup_cosine_lambda(warmup, total_steps, final)
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
    for _unused in range(n_batches):
        src, tgt_in, tgt_out, _unused = reverse_batch(batch_size, 1, max_len, letters, generator=gen)
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


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(got, what: str, count: int, hint: str) -> torch.Tensor:
    """A list of ``count`` plain numbers from the worker, as a float64 tensor."""
    if not isinstance(got, list) or len(got) != count or not all(_is_number(v) for v in got):
        raise expect.CheckFailed(_("{what}: expected a list of {count} numbers, got {got}; {hint}",
                                   what=what, count=count, got=expect.describe(got), hint=hint))
    return torch.tensor(got, dtype=torch.float64)


def _close(got, candidate: torch.Tensor, atol: float = 1e-7, rtol: float = 1e-6) -> bool:
    """Whether a learner's tensor equals a trusted candidate (a known wrong convention)."""
    return (isinstance(got, torch.Tensor) and got.shape == candidate.shape and torch.isfinite(got).all().item()
            and torch.allclose(got.double(), candidate.double(), atol=atol, rtol=rtol))


def _name_the_contract(check, got, wrong_conventions: dict[str, torch.Tensor], **tolerance):
    """Run ``check``; when it fails and ``got`` equals one of the wrong conventions computed here,
    add the contract that convention breaks to the message."""
    try:
        check()
    except expect.CheckFailed as exc:
        for contract, candidate in wrong_conventions.items():
            if _close(got, candidate, **tolerance):
                raise expect.CheckFailed(_("{failure}. {contract}", failure=exc.args[0], contract=contract)) from None
        raise


def _smoothing_conventions(logits, target, pad_id, smoothing) -> dict[str, torch.Tensor]:
    """Losses of the usual wrong conventions, keyed by the contract each one breaks."""
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    V = logits.size(-1)
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    keep = target != pad_id
    on_true = F.one_hot(target, V).bool()
    other_classes = torch.where(on_true, 1.0 - smoothing, smoothing / (V - 1))
    without_pad_class = torch.where(on_true, 1.0 - smoothing, smoothing / (V - 2))
    without_pad_class[..., pad_id] = 0.0
    found = {
        _("Padding positions must not count: the mean is over the positions whose target is not pad_id"):
            ((1 - smoothing) * nll - smoothing * log_probs.mean(-1)).mean(),
        _("q must sum to 1: the true token keeps 1 - ε and ε is spread as ε/V over all V classes"):
            (nll - smoothing * log_probs.sum(-1))[keep].mean(),
        _("ε/V goes to every one of the V classes, the true token included, as in F.cross_entropy(label_smoothing=ε)"):
            (-(other_classes * log_probs).sum(-1))[keep].mean(),
        _("ε/V goes to every one of the V classes, the padding class included, as in F.cross_entropy(label_smoothing=ε)"):
            (-(without_pad_class * log_probs).sum(-1))[keep].mean(),
    }
    if not smoothing:  # without smoothing only the padding can be wrong
        found = dict(list(found.items())[:1])
    return {contract: loss.to(logits.dtype) for contract, loss in found.items()}


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
        label = _("label_smoothed_cross_entropy(logits {shape} {dtype}, target with padding, pad_id=0, "
                  "smoothing={smoothing})", shape=(B, T, V), dtype=dtype, smoothing=smoothing)
        _name_the_contract(lambda: expect.tensor(got, want, label), got,
                           _smoothing_conventions(logits, target, PAD_ID, smoothing), atol=1e-5, rtol=1e-4)
    logits = torch.randn(2, 3, 6, generator=gen, dtype=torch.float64)
    target = torch.tensor([[4, 4, 4], [5, 5, 5]])
    got = submission.call("label_smoothed_cross_entropy", logits, target, 4, 0.2)
    expect.tensor(got, label_smoothed_cross_entropy(logits, target, 4, 0.2),
                  _("label_smoothed_cross_entropy(..., pad_id=4, smoothing=0.2): padding is whatever pad_id says, not 0"))


# The loss floor: measured as the loss of the prediction p = q (Gibbs' inequality: no p does better).
def measured_loss_floor(vocab_size: int, smoothing: float) -> float:
    """F.cross_entropy with label smoothing, at logits log q (the best prediction), for one token."""
    q = torch.full((vocab_size,), smoothing / vocab_size, dtype=torch.float64)
    q[0] += 1.0 - smoothing
    logits = torch.where(q > 0, q.log(), torch.tensor(-1e300, dtype=torch.float64))  # log 0 without -inf
    return F.cross_entropy(logits[None], torch.tensor([0]), label_smoothing=smoothing).item()


def _floor_conventions(V: int, eps: float) -> dict[str, float]:
    xlogx = lambda x: 0.0 if x == 0 else x * math.log(x)  # noqa: E731
    return {
        _("That is the loss of a uniform prediction; the floor is the loss of the best prediction, p = q"):
            math.log(V),
        _("ε/V goes to every one of the V classes, the true token included (q_y = 1 - ε + ε/V)"):
            -xlogx(1 - eps) - eps * (math.log(eps / (V - 1)) if eps else 0.0),
        _("q must sum to 1: the true token keeps 1 - ε + ε/V, every other class ε/V"):
            -xlogx(1 - eps) - (V - 1) * xlogx(eps / V),
    }


def test_smoothed_loss_floor(submission):
    for V, eps in ((37, 0.1), (5, 0.3), (1000, 0.0), (10, 1.0), (2, 0.5), (32000, 0.1)):
        call = f"smoothed_loss_floor({V}, {eps})"
        got = submission.call("smoothed_loss_floor", V, eps)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if _is_number(got) and not math.isfinite(got) and eps == 0:
            raise expect.CheckFailed(_("{call}: expected a finite number, got {got}. With smoothing 0, q has zeros, and 0 · log 0 "
                                       "counts as 0 (the limit of x log x)", call=call, got=got))
        want = measured_loss_floor(V, eps)
        try:
            expect.number(got, want, call, atol=1e-9, rtol=1e-6)
        except expect.CheckFailed as exc:
            for contract, value in _floor_conventions(V, eps).items():
                if abs(got - value) <= 1e-9 + 1e-6 * abs(value) and abs(value - want) > 1e-6:
                    raise expect.CheckFailed(_("{failure}. {contract}", failure=exc.args[0], contract=contract)) from None
            raise


def test_schedule(submission):
    for warmup, steps in ((10, 40), (4000, 8), (1, 5), (100, 300)):
        what = f"schedule_values({warmup}, {steps})"
        got = _numbers(submission.call("schedule_values", warmup, steps), what, steps,
                       _("inverse_sqrt_lambda(warmup) should return a function of the step"))
        want = torch.tensor(schedule_values(warmup, steps), dtype=torch.float64)
        w = max(1, warmup)
        from_zero = torch.tensor([min(s / w, math.sqrt(w / max(s, 1))) for s in range(steps)], dtype=torch.float64)
        _name_the_contract(
            lambda: expect.tensor(got, want, _("the multipliers of inverse_sqrt_lambda({warmup}) at steps 0..{steps}",
                                               warmup=warmup, steps=steps - 1),
                                  atol=1e-9, rtol=1e-7), got,
            {_("LambdaLR counts steps from 0: step s of the formula is step + 1"): from_zero}, atol=1e-9, rtol=1e-7)


def measured_peak(d_model: int, warmup: int) -> float:
    """The largest learning rate of the paper's schedule, over its first 4 * warmup steps."""
    s = torch.arange(1, 4 * warmup + 1, dtype=torch.float64)
    return (d_model ** -0.5 * torch.minimum(s ** -0.5, s * warmup ** -1.5)).max().item()


def test_peak_learning_rate(submission):
    for d_model, warmup in ((512, 4000), (1024, 4000), (256, 100), (64, 1), (128, 250)):
        call = f"peak_learning_rate({d_model}, {warmup})"
        got = submission.call("peak_learning_rate", d_model, warmup)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        want = measured_peak(d_model, warmup)
        try:
            expect.number(got, want, call, atol=0, rtol=1e-6)
        except expect.CheckFailed as exc:
            conventions = {
                _("The paper's learning rate carries the factor d_model^-0.5"): warmup ** -0.5,
                _("The second term of the min is step · warmup^-1.5, and the peak is where the two terms meet"):
                    d_model ** -0.5 * warmup ** -1.5,
                _("The peak is at step = warmup, not at the first step"): d_model ** -0.5 * min(1.0, warmup ** -1.5),
            }
            for contract, value in conventions.items():
                if abs(got - value) <= 1e-6 * abs(value) and abs(value - want) > 1e-6 * want:
                    raise expect.CheckFailed(_("{failure}. {contract}", failure=exc.args[0], contract=contract)) from None
            raise


def _cosine_conventions(warmup, total, final, steps) -> dict[str, torch.Tensor]:
    w = max(1, warmup)

    def values(fn):
        return torch.tensor([fn(step) for step in range(steps)], dtype=torch.float64)

    def cosine(s, start, length, low):
        progress = min(1.0, max(0.0, (s - start) / length))
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress))

    return {
        _("LambdaLR counts steps from 0: step s of the description is step + 1"):
            values(lambda step: step / w if step <= w else cosine(step, w, total - w, final)),
        _("The cosine runs from the end of the warmup to total_steps (over total_steps - warmup steps)"):
            values(lambda step: (step + 1) / w if step + 1 <= w else cosine(step + 1, w, total, final)),
        _("The cosine ends at final, not at 0"): values(lambda step: (step + 1) / w if step + 1 <= w
                                                     else cosine(step + 1, w, total - w, 0.0)),
        _("After total_steps the multiplier stays at final"): values(
            lambda step: (step + 1) / w if step + 1 <= w
            else final + (1 - final) * 0.5 * (1 + math.cos(math.pi * (step + 1 - w) / (total - w)))),
    }


def test_cosine_schedule(submission):
    for warmup, total, final, steps in ((10, 50, 0.0, 60), (1, 20, 0.1, 25), (0, 8, 0.5, 10), (100, 1000, 0.0, 1100)):
        what = f"cosine_schedule_values({warmup}, {total}, {final}, {steps})"
        got = _numbers(submission.call("cosine_schedule_values", warmup, total, final, steps), what, steps,
                       _("warmup_cosine_lambda(warmup, total_steps, final) should return a function of the step"))
        want = torch.tensor(cosine_schedule_values(warmup, total, final, steps), dtype=torch.float64)
        conventions = {k: v for k, v in _cosine_conventions(warmup, total, final, steps).items()
                       if not torch.allclose(v, want, atol=1e-9, rtol=1e-7)}
        _name_the_contract(
            lambda: expect.tensor(got, want, _("the multipliers of warmup_cosine_lambda({warmup}, {total}, {final}) at steps 0..{steps}",
                                               warmup=warmup, total=total, final=final, steps=steps - 1), atol=1e-9, rtol=1e-7),
            got, conventions, atol=1e-9, rtol=1e-7)


def _unshifted_first_loss(config, weights, batch, smoothing) -> float:
    """The first loss of a step whose decoder reads the whole target and predicts it (no shift)."""
    model = Transformer(TransformerConfig(**config)).double()
    model.load_state_dict(weights)
    model.train()
    src, tgt = batch
    with torch.no_grad():
        return label_smoothed_cross_entropy(model(src, tgt), tgt, config["pad_id"], smoothing).item()


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
            raise expect.CheckFailed(_("train_steps(...) over {want} batches: expected a list of {want} losses, got {got}",
                                       want=len(want), got=expect.describe(got)))
        for step, (g, w) in enumerate(zip(got, want)):
            what = (_("the loss train_step returned at step {step} (smoothing={smoothing}, clip={clip}); step 0 "
                      "checks the forward pass and the loss, later steps the update",
                      step=step, smoothing=smoothing, clip=clip))
            try:
                expect.number(g, w, what, atol=1e-7, rtol=1e-6)
            except expect.CheckFailed as exc:
                if step == 0 and _is_number(g) and math.isclose(
                        g, _unshifted_first_loss(config, weights, batches[0], smoothing), rel_tol=1e-6, abs_tol=1e-7):
                    raise expect.CheckFailed(_("{exc}. Teacher forcing shifts the target: the decoder reads tgt[:, :-1] (BOS first) and "
                                               "predicts tgt[:, 1:]", exc=exc)) from None
                raise


def test_training_run(submission):
    steps = 200
    got = submission.call("train_reverse_task", steps, 0)
    if not isinstance(got, dict) or not isinstance(got.get("losses"), list) or len(got["losses"]) != steps:
        raise expect.CheckFailed(_("train_reverse_task({steps}, 0): expected a dict with {steps} losses, got {got}",
                                   steps=steps, got=expect.describe(got)))
    losses = got["losses"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in losses):
        raise expect.CheckFailed(_("train_reverse_task: some losses are not finite numbers"))
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    expect.true(last < 0.5 * first, _("the training loss did not come down: {first:.3f} over the first 20 steps, {last:.3f} over the "
                                      "last 20 (it should at least halve)", first=first, last=last))
    # The trained weights are tested here, on new words, by the course's model and decoder.
    weights = got.get("weights")
    model = reverse_task_model()
    if not isinstance(weights, dict) or set(weights) != set(model.state_dict()):
        raise expect.CheckFailed(_("train_reverse_task: the trained weights (\"weights\") are missing or do not have the "
                                   "parameter names of the course's Transformer"))
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError) as exc:
        raise expect.CheckFailed(_("train_reverse_task: the trained weights do not fit the model: {exc}",
                                   exc=str(exc)[:300])) from None
    match = reverse_exact_match(model, seed=2000)
    expect.true(match >= 0.5, _("after {steps} steps the trained model reverses {match:.0%} of 200 new words exactly (expected "
                                "at least 50%)", steps=steps, match=match))
