"""What the course teaches about training, written once: the loss, the learning-rate schedule, the
optimiser and one training step.

Problem set 8 asks for these functions (its solutions are filled from this file), the grader compares
learners' versions with them, chapter 8 explains them, and the course's training loop
(``attnlab.train.loop``) trains with them: the loss it minimises is ``label_smoothed_cross_entropy``, its
schedule ``inverse_sqrt_lambda``, its optimiser ``make_optimizer``'s. ``warmup_cosine_lambda`` is the
variant of the schedule that problem set 8 asks for from a description in words.
"""
from __future__ import annotations

import math

import torch


def label_smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, pad_id: int,
                                 smoothing: float = 0.0) -> torch.Tensor:
    """Mean over the non-padding targets of the cross-entropy between q and softmax(logits).

    q = (1 - smoothing) * one_hot(target) + smoothing / V: the true token keeps most of the mass,
    and ``smoothing`` is spread evenly over all V classes. logits (B, T, V), target (B, T) -> a 0-d tensor.
    """
    log_probs = torch.log_softmax(logits, dim=-1)  # (B, T, V)
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, T): -log p(true token)
    uniform = -log_probs.mean(-1)  # (B, T): cross-entropy against the uniform distribution
    loss = (1.0 - smoothing) * nll + smoothing * uniform  # (B, T)
    keep = target != pad_id  # padding positions are not predictions
    # masked_fill, not loss[keep]: a boolean index has a data-dependent shape, which costs a GPU a sync.
    return loss.masked_fill(~keep, 0.0).sum() / keep.sum()


def inverse_sqrt_lambda(warmup: int):
    """Vaswani et al. (2017), scaled so that the peak (at ``warmup``) is 1: min(s / w, sqrt(w / s))."""
    warmup = max(1, warmup)
    return lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1)))


def warmup_cosine_lambda(warmup: int, total_steps: int, final: float = 0.0):
    """Linear warmup to 1 over ``warmup`` steps, then half a cosine down to ``final`` at ``total_steps``.

    The schedule of most models trained since the paper (GPT-3, LLaMA). Steps are counted from 0 as
    LambdaLR counts them, so s = step + 1: s / w while s <= w; then
    final + (1 - final) (1 + cos(pi (s - w) / (total_steps - w))) / 2; ``final`` after total_steps.
    """
    warmup = max(1, warmup)
    if total_steps <= warmup:
        raise ValueError(f"total_steps ({total_steps}) must be larger than warmup ({warmup})")

    def factor(step: int) -> float:
        s = step + 1
        if s <= warmup:
            return s / warmup
        progress = min(1.0, (s - warmup) / (total_steps - warmup))  # 0 at the peak, 1 at total_steps
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def make_optimizer(model, lr: float, warmup: int, weight_decay: float = 0.0):
    """AdamW with the paper's betas and epsilon, and a LambdaLR scheduler with your schedule.

    Weight decay (off unless asked for) applies to the weight matrices only, not to biases and LayerNorm gains.
    """
    matrices = [p for p in model.parameters() if p.dim() > 1]
    vectors = [p for p in model.parameters() if p.dim() <= 1]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": weight_decay},
                                   {"params": vectors, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98), eps=1e-9)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, inverse_sqrt_lambda(warmup))


def train_step(model, optimizer, scheduler, src: torch.Tensor, tgt: torch.Tensor, pad_id: int,
               smoothing: float = 0.0, clip: float = 1.0) -> float:
    """One optimisation step with teacher forcing; returns the loss of this batch (a float).

    src (B, S); tgt (B, T + 1) starts with BOS: the decoder reads tgt[:, :-1] and must predict tgt[:, 1:].
    Forward, loss, zero the old gradients, backward, clip the gradient norm to ``clip`` (0: no clipping),
    optimizer step, scheduler step.
    """
    model.train()
    logits = model(src, tgt[:, :-1])  # (B, T, V)
    loss = label_smoothed_cross_entropy(logits, tgt[:, 1:], pad_id, smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    scheduler.step()
    return loss.item()
