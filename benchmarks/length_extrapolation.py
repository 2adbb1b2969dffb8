"""Length extrapolation of five position schemes: train a small causal LM to copy strings of up to
L_train digits, test it on strings of exactly 1, 2, 4 and 8 times L_train digits.

    python benchmarks/length_extrapolation.py [--train-length 16] [--steps 1200] [--threads 1]

One model per scheme, the same in everything else (seed, data, steps, optimizer): token embedding,
then the scheme's positions, N :class:`attnlab.modern.ModernDecoderLayer` (pre-RMSNorm, SwiGLU, no biases),
a final RMSNorm and an output layer tied to the embedding. The schemes:

- ``sinusoidal``: the fixed encoding of Vaswani et al. added to the embeddings (any length);
- ``learned``: a trained vector per position (``max_len`` = the longest training sequence, so longer
  test sequences cannot be represented: ``null``);
- ``rotary``: queries and keys rotated by their positions (RoPE), nothing added to the embeddings;
- ``alibi``: ``-slope * distance`` added to the scores (:func:`attnlab.modern.alibi_bias`);
- ``t5``: a learned scalar per bucket of distance and head, shared by the layers
  (:class:`attnlab.modern.RelativePositionBias`, 32 buckets, max_distance 128, causal).

A sequence is ``BOS d_1 .. d_n SEP d_1 .. d_n EOS``; the loss is on the copy and the EOS only (the
digits before SEP are random). Training draws n uniformly in 1 .. L_train. Accuracy is measured in one
teacher-forced pass: per-token accuracy over the n + 1 predicted tokens (the copy and EOS), and exact
match (every one of them right, which is what greedy decoding would produce). Writes
``benchmarks/results/length_extrapolation.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from attnlab.modern import ModernDecoderLayer, RelativePositionBias, RMSNorm, alibi_bias
from attnlab.positional import LearnedPositionalEmbedding, PositionalEncoding
from attnlab.tokens import BOS_ID, EOS_ID, PAD_ID
from attnlab.transformer import causal_mask

SCHEMES = ("sinusoidal", "learned", "rotary", "alibi", "t5")
FACTORS = (1, 2, 4, 8)
SEP_ID = EOS_ID + 1
FIRST_DIGIT = SEP_ID + 1
IGNORE = -100


class PositionSchemeLM(nn.Module):
    """A causal LM of ModernDecoderLayers whose only difference between schemes is the positions.

    tokens (B, L) -> logits (B, L, V). ``max_len`` bounds the absolute schemes (sinusoidal, learned).
    """

    def __init__(self, scheme: str, vocab_size: int, d_model: int, num_heads: int, num_layers: int, d_ff: int,
                 max_len: int):
        super().__init__()
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        self.scheme, self.d_model, self.num_heads = scheme, d_model, num_heads
        self.embed = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)  # entries of embed * sqrt(d) about 1, as a sinusoid's
        self.layers = nn.ModuleList(ModernDecoderLayer(d_model, num_heads, d_ff, rotary=scheme == "rotary")
                                    for _ in range(num_layers))
        self.norm = RMSNorm(d_model)
        # created last, so that the parameters above start equal in every scheme
        self.pos = {"sinusoidal": lambda: PositionalEncoding(d_model, max_len),
                    "learned": lambda: LearnedPositionalEmbedding(d_model, max_len)}.get(scheme, nn.Identity)()
        self.relative = RelativePositionBias(num_heads, bidirectional=False) if scheme == "t5" else None

    def can_represent(self, length: int) -> bool:
        return self.scheme != "learned" or length <= self.pos.embedding.num_embeddings

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        L = tokens.size(1)
        x = self.pos(self.embed(tokens) * math.sqrt(self.d_model))  # (B, L, d_model)
        bias = None  # (h, L, L), added to every layer's scores
        if self.scheme == "alibi":
            bias = alibi_bias(self.num_heads, L, device=tokens.device, dtype=x.dtype)
        elif self.scheme == "t5":
            bias = self.relative(L)
        mask = causal_mask(L, device=tokens.device)
        for layer in self.layers:
            x = layer(x, mask, bias=bias)
        return self.norm(x) @ self.embed.weight.T  # (B, L, V): the output layer is the embedding


def copy_batch(lengths: torch.Tensor, generator: torch.Generator, num_symbols: int = 10):
    """``BOS d_1..d_n SEP d_1..d_n EOS`` (padded) for each n in lengths (B,), and the next-token labels
    (B, L): the copy and EOS where they are predicted, ``IGNORE`` elsewhere."""
    B, n_max = lengths.numel(), int(lengths.max())
    L = 2 * n_max + 3
    digits = torch.randint(FIRST_DIGIT, FIRST_DIGIT + num_symbols, (B, n_max), generator=generator)
    tokens = torch.full((B, L), PAD_ID)
    labels = torch.full((B, L), IGNORE)
    for b, n in enumerate(lengths.tolist()):
        d = digits[b, :n]
        tokens[b, : 2 * n + 3] = torch.cat([torch.tensor([BOS_ID]), d, torch.tensor([SEP_ID]), d,
                                            torch.tensor([EOS_ID])])
        # position t predicts token t + 1: SEP (at n + 1) predicts d_1, ..., the last copied digit predicts EOS
        labels[b, n + 1: 2 * n + 2] = tokens[b, n + 2: 2 * n + 3]
    return tokens, labels


@torch.no_grad()
def evaluate(model: PositionSchemeLM, n: int, examples: int, batch: int, seed: int) -> tuple[float | None, float | None]:
    """(per-token accuracy, exact match) of teacher-forced copies of ``examples`` strings of n digits."""
    if not model.can_represent(2 * n + 3):
        return None, None
    g = torch.Generator().manual_seed(seed)
    right = total = exact = 0
    model.eval()
    for start in range(0, examples, batch):
        tokens, labels = copy_batch(torch.full((min(batch, examples - start),), n), g)
        predicted = model(tokens).argmax(-1)
        scored = labels != IGNORE
        correct = (predicted == labels) & scored
        right += int(correct.sum())
        total += int(scored.sum())
        exact += int((correct.sum(1) == scored.sum(1)).sum())
    model.train()
    return right / total, exact / examples


def train_scheme(scheme: str, a) -> dict:
    torch.manual_seed(a.seed)  # the same initial weights where the schemes share parameters
    max_len = 2 * a.train_length + 3
    model = PositionSchemeLM(scheme, FIRST_DIGIT + 10, a.d_model, a.heads, a.layers, a.d_ff,
                             max_len if scheme == "learned" else 2 * max(FACTORS) * a.train_length + 3)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    warmup = max(1, a.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    g = torch.Generator().manual_seed(a.seed)  # the same training data for every scheme
    t0, cpu0 = time.perf_counter(), time.process_time()
    losses = []
    for step in range(a.steps):
        lengths = torch.randint(1, a.train_length + 1, (a.batch,), generator=g)
        tokens, labels = copy_batch(lengths, g)
        logits = model(tokens)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    accuracy, exact = [], []
    for f in FACTORS:
        acc, em = evaluate(model, f * a.train_length, a.eval_examples, a.eval_batch, a.seed + 1000 + f)
        accuracy.append(None if acc is None else round(acc, 4))
        exact.append(None if em is None else round(em, 4))
    tail = losses[-max(1, a.steps // 10):]
    return {"accuracy": accuracy, "exact_match": exact, "final_train_loss": round(sum(tail) / len(tail), 4),
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": round(train_s, 1), "train_cpu_seconds": round(train_cpu, 1)}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-length", type=int, default=16, help="longest string of digits in training")
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--d-ff", type=int, default=176, help="SwiGLU's hidden size (about 8/3 d_model)")
    p.add_argument("--eval-examples", type=int, default=256)
    p.add_argument("--eval-batch", type=int, default=64)
    p.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=SCHEMES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/length_extrapolation.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    load_before = os.getloadavg()
    runs = {}
    for scheme in a.schemes:
        runs[scheme] = train_scheme(scheme, a)
        print(scheme, json.dumps(runs[scheme]), flush=True)
    result = {
        "command": "python benchmarks/length_extrapolation.py " + " ".join(map(shlex.quote, argv)),
        "torch": torch.__version__,
        "task": (f"copy a string of random decimal digits in a causal LM: BOS d_1..d_n SEP d_1..d_n EOS; "
                 f"trained on n uniform in 1..{a.train_length}, tested on n = factor * {a.train_length}"),
        "train_length": a.train_length,
        "factors": list(FACTORS),
        "runs": runs,
        "note": ("accuracy = per-token accuracy of the teacher-forced copy (the n digits and EOS after SEP, "
                 "argmax of one forward pass), exact_match = the fraction of strings with all n + 1 right (what "
                 "greedy decoding would produce); null = the scheme cannot represent that length (learned "
                 f"positions exist up to the longest training sequence, {2 * a.train_length + 3} tokens). "
                 f"{a.eval_examples} test strings per length, from a seed of their own (random {a.train_length}+ digit strings: practically never a training string). Model: {a.layers} "
                 f"ModernDecoderLayer (d_model {a.d_model}, {a.heads} heads, SwiGLU {a.d_ff}), tied output; "
                 f"AdamW lr {a.lr} with {max(1, a.steps // 20)} warm-up steps, batch {a.batch}, {a.steps} steps, "
                 f"seed {a.seed}, the same data and initial weights for every scheme. t5: 32 buckets, "
                 "max_distance 128, shared by the layers, starting at 0."),
        "steps": a.steps, "seed": a.seed,
        "config": {"d_model": a.d_model, "heads": a.heads, "layers": a.layers, "d_ff": a.d_ff, "batch": a.batch,
                   "lr": a.lr, "eval_examples": a.eval_examples},
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "threads": a.threads, "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
    }
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print("wrote", path)
    return result


if __name__ == "__main__":
    main()
