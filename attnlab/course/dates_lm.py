"""The dates task as a prompt for a decoder-only language model, trained for a budget of CPU seconds.

Chapter 12 races two models built from the same :class:`~attnlab.decoder_only.DecoderOnlyLM` stack, a
2017-style block and a LLaMA-style block, for the same CPU time. A pair (written date, ISO date)
becomes one sequence ``<bos> source = target <eos>`` of characters; the loss is next-token
cross-entropy on the target and its ``<eos>`` only (the source is given, not predicted), and a test
date counts when greedy decoding after ``source =`` writes the target exactly.

The budget is CPU time of this process (``time.process_time``), not wall-clock time, so that a busy
machine slows a run down without shortening its training; evaluation is not counted.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from attnlab.decoder_only import DecoderOnlyConfig, DecoderOnlyLM, causal_lm_loss
from attnlab.objectives import warmup_cosine_lambda
from attnlab.tokens import BOS_ID, EOS_ID, PAD_ID
from attnlab.train.data import Pair, pad_batch
from attnlab.train.tokenizers import CharVocab

SEPARATOR = "="  # between the written date and its ISO form; no locale writes it in a date
TARGET_LENGTH = 10  # YYYY-MM-DD


def prompt_vocab(pairs: list[Pair]) -> CharVocab:
    """Every character of the pairs, and the separator."""
    return CharVocab.build([s + t for s, t in pairs] + [SEPARATOR])


def encode_pair(vocab: CharVocab, source: str, target: str | None = None) -> tuple[list[int], int]:
    """(ids, prompt length): ``<bos> source =`` then, if given, ``target <eos>``."""
    prompt = vocab.encode(source + SEPARATOR, add_bos=True)
    return prompt + (vocab.encode(target, add_eos=True) if target is not None else []), len(prompt)


def lm_batch(vocab: CharVocab, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    """tokens (B, L) padded at the end, and the labels for :func:`causal_lm_loss`: the same ids with
    the prompt replaced by padding, so that only the target and ``<eos>`` are predicted."""
    encoded = [encode_pair(vocab, s, t) for s, t in pairs]
    tokens = pad_batch([ids for ids, _ in encoded])
    labels = tokens.clone()
    for row, (_, prompt_length) in enumerate(encoded):
        labels[row, :prompt_length] = PAD_ID  # the first target token is predicted at position prompt_length - 1
    return tokens, labels


@torch.no_grad()
def exact_match(model: DecoderOnlyLM, vocab: CharVocab, pairs: list[Pair]) -> tuple[float, list[str]]:
    """Share of pairs whose target greedy decoding writes exactly, and the decoded strings.

    Prompts of one length are decoded together (a batch of prompts must not be padded: generation
    continues at the end of each row)."""
    model.eval()
    decoded: list[str] = [""] * len(pairs)
    by_length: dict[int, list[int]] = {}
    for index, (source, _) in enumerate(pairs):
        by_length.setdefault(len(encode_pair(vocab, source)[0]), []).append(index)
    for indices in by_length.values():
        prompts = torch.tensor([encode_pair(vocab, pairs[i][0])[0] for i in indices])  # (b, P)
        out = model.generate(prompts, TARGET_LENGTH + 1, eos_id=EOS_ID)  # (b, P + 11)
        for i, row in zip(indices, out[:, prompts.size(1):].tolist()):
            decoded[i] = vocab.decode(row)
    return sum(d == t for d, (_, t) in zip(decoded, pairs)) / max(1, len(pairs)), decoded


@dataclass
class DatesLMRun:
    name: str
    parameters: int
    cpu_seconds: float  # CPU time spent training
    steps: int
    losses: list[float] = field(default_factory=list)  # training loss of each step
    elapsed: list[float] = field(default_factory=list)  # CPU seconds at the end of each step
    exact_match: float = 0.0  # on the test pairs
    decoded: list[str] = field(default_factory=list)


def train_dates_lm(name: str, config: DecoderOnlyConfig, train: list[Pair], test: list[Pair], vocab: CharVocab,
                   cpu_seconds: float = 25.0, batch_size: int = 64, lr: float = 3e-3, warmup: int = 100,
                   expected_steps: int = 2000, seed: int = 0) -> DatesLMRun:
    """Train a fresh ``DecoderOnlyLM(config)`` on ``train`` until ``cpu_seconds`` of CPU time are spent,
    then measure exact match on ``test``.

    AdamW, warmup then a cosine decay. The schedule cannot know in advance how many steps the budget
    buys, so its clock is the share of the budget spent: step s of an unknown total runs at the factor
    of ``warmup_cosine_lambda(warmup, expected_steps)`` at step ``max(s, fraction * expected_steps)``.
    """
    torch.manual_seed(seed)
    model = DecoderOnlyLM(config)
    matrices = [p for p in model.parameters() if p.dim() > 1]
    vectors = [p for p in model.parameters() if p.dim() <= 1]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1}, {"params": vectors, "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.98))
    schedule = warmup_cosine_lambda(warmup, expected_steps, final=0.05)
    order = torch.Generator().manual_seed(seed)
    run = DatesLMRun(name, model.num_parameters(), 0.0, 0)
    start = time.process_time()
    model.train()
    while True:
        spent = time.process_time() - start
        if spent >= cpu_seconds:
            break
        clock = max(run.steps, math.floor(spent / cpu_seconds * expected_steps)) if run.steps >= warmup else run.steps
        for group in optimizer.param_groups:
            group["lr"] = lr * schedule(clock)
        rows = torch.randint(len(train), (batch_size,), generator=order).tolist()
        tokens, labels = lm_batch(vocab, [train[r] for r in rows])
        loss = causal_lm_loss(model(tokens), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        run.steps += 1
        run.losses.append(loss.item())
        run.elapsed.append(time.process_time() - start)
    run.cpu_seconds = time.process_time() - start
    run.exact_match, run.decoded = exact_match(model, vocab, test)
    return run
