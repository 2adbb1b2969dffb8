"""Train the reference Transformer: ``python -m attnlab.train --task dates --device auto``.

Read top to bottom: options and presets, data, the training state and its checkpoints, one step,
evaluation, the loop. What is taught about training lives in ``attnlab.objectives`` and the loop
trains with it: the loss is ``label_smoothed_cross_entropy``, the optimiser and schedule are
``make_optimizer``'s (AdamW, warmup then inverse square root), and ``train_batch`` is the taught
``train_step`` plus what a real run adds (autocast / GradScaler, data parallelism, torch.compile).
Checkpoints resume exactly; evaluation uses greedy and beam search; metrics go to JSON and a plot.

Three model families train in the same loop (``--model``): the encoder-decoder ``Transformer`` (the
default), the decoder-only ``DecoderOnlyLM`` (chapter 9) on the same tasks written as one sequence
``source <sep> target <eos>``, and the encoder-only ``EncoderOnlyModel`` (chapter 10) as a classifier
(``--task locale``). What differs between them (data, model, loss, evaluation) is a small adapter,
``Family``, one per model; the loop, its steps, checkpoints and clock are the same for all three.

Data-parallel training: ``torchrun --nproc_per_node N -m attnlab.train ...`` (NCCL on
GPUs, gloo on CPU). Every process builds the same global batch and keeps its rows ``rank::N``; each
process's loss is scaled by its share of the global batch's target tokens, so the averaged gradient
equals the one-process gradient of the whole batch.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import itertools
import json
import math
import os
import random
import sys
import time
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import data as D
from .tokenizers import Labels, build_vocab, vocab_from_dict
from ..decoder_only import DecoderOnlyConfig, DecoderOnlyLM, causal_lm_loss
from ..decoding import beam_search, greedy_decode
from ..encoder_only import EncoderOnlyConfig, EncoderOnlyModel
from ..objectives import label_smoothed_cross_entropy, make_optimizer
from ..tokens import BOS_ID, EOS_ID, PAD_ID
from ..transformer import POSITIONAL_KINDS, Transformer, TransformerConfig

TASKS = ("copy", "reverse", "sort", "dates", "tsv", "locale")
CLASSIFICATION_TASKS = ("locale",)  # tasks whose target is one of a few classes (an encoder-only model's)
MODELS = ("encoder-decoder", "decoder-only", "encoder-only")

# Presets set defaults; any flag given on the command line wins.
PRESETS = {
    # The CPU goal: >= 99 % exact match on the dates test split in <= 5 minutes on 2 cores.
    # Why each choice: benchmarks/train_dates.py and benchmarks/results/train_dates*.json.
    "cpu-small": dict(
        tokenizer="bpe", bpe_vocab_size=2000, shared_vocab=True, tie_embeddings=True,
        d_model=128, num_heads=4, num_encoder_layers=2, num_decoder_layers=2, d_ff=256,
        dropout=0.0, label_smoothing=0.0, positional="learned", norm_first=True,
        batch_size=64, lr=2e-3, warmup=200, weight_decay=0.01, clip=1.0,
        steps=100_000, time_budget=300.0, n_train=200_000,
    ),
    # Characters and rotary positions: slower to 99 % than the BPE preset, but it reads month names it has
    # never seen far better (held-out locales 82 % against 55 %): benchmarks/results/train_dates_char_rotary.json.
    "cpu-small-char": None,  # filled in below from cpu-small
    # The paper's base model (65 M parameters with its vocabulary), for a GPU.
    "base": dict(
        tokenizer="bpe", bpe_vocab_size=8000, shared_vocab=True, tie_embeddings=True,
        d_model=512, num_heads=8, num_encoder_layers=6, num_decoder_layers=6, d_ff=2048,
        dropout=0.1, label_smoothing=0.1, positional="sinusoidal", norm_first=False,
        batch_size=256, lr=7e-4, warmup=4000, weight_decay=0.0, clip=1.0,
        steps=100_000, time_budget=0.0, n_train=1_000_000,
    ),
}


PRESETS["cpu-small-char"] = dict(PRESETS["cpu-small"], tokenizer="char", shared_vocab=False, tie_embeddings=False,
                                 positional="rotary", d_model=64, d_ff=256, lr=3e-3)


class TrainError(Exception):
    """A bad option or input that the user can fix; printed as one line."""


# ------------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------------

# TransformerConfig fields that the data decide (vocabulary sizes, longest sequence, padding id) or that
# have a flag of their own (--sdpa); every other field is a flag, --field-name, its default from the preset.
CONFIG_NOT_FLAGS = {"src_vocab_size", "tgt_vocab_size", "max_len", "pad_id", "use_sdpa"}
CONFIG_CHOICES = {"positional": POSITIONAL_KINDS}


def model_fields() -> list[dataclasses.Field]:
    """The fields of ``TransformerConfig`` that are command-line flags."""
    return [f for f in dataclasses.fields(TransformerConfig) if f.name not in CONFIG_NOT_FLAGS]


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per field of ``TransformerConfig`` (``model_fields``): a new field becomes a flag by itself."""
    group = parser.add_argument_group("model (TransformerConfig; flags override the preset)")
    hints = typing.get_type_hints(TransformerConfig)
    for f in model_fields():
        kind = hints[f.name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next(k for k in typing.get_args(kind) if k is not type(None))  # Optional[X] -> X
        default = f.default if f.default is not dataclasses.MISSING else None
        flag = "--" + f.name.replace("_", "-")
        help_text = f"TransformerConfig.{f.name} (default: the preset's, else {default!r})"
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        elif typing.get_origin(kind) is typing.Literal:
            group.add_argument(flag, choices=typing.get_args(kind), help=help_text)
        else:
            group.add_argument(flag, type=kind, choices=CONFIG_CHOICES.get(f.name), help=help_text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m attnlab.train", description=__doc__.splitlines()[0])
    a = p.add_argument
    a("--task", default="dates", help=f"one of {TASKS} (locale: which CLDR locale wrote a date, a classification)")
    a("--model", default="encoder-decoder", help=f"one of {MODELS}: the model family trained")
    a("--tsv", help="parallel corpus for --task tsv: source<TAB>target per line (split 90/5/5)")
    a("--preset", default="cpu-small", help=f"one of {tuple(PRESETS)}; flags override it")
    a("--device", default="auto", help="cpu, cuda, mps or auto")
    a("--amp", default="none", choices=("none", "bf16", "fp16"), help="autocast dtype (fp16 adds a GradScaler)")
    a("--sdpa", action="store_true", help="fused F.scaled_dot_product_attention")
    a("--compile", action="store_true", help="torch.compile the model for training")
    a("--threads", type=int, default=0, help="torch CPU threads (0: leave PyTorch's default)")
    a("--seed", type=int, default=0)
    a("--out", default="runs/train", help="folder for checkpoint.pt, metrics.json, metrics.png")
    a("--resume", help="checkpoint to continue from (its config must match this run's)")
    # data
    a("--tokenizer", choices=("char", "bpe"))
    a("--bpe-vocab-size", type=int)
    a("--shared-vocab", action=argparse.BooleanOptionalAction, help="one vocabulary for source and target")
    a("--n-train", type=int)
    a("--n-valid", type=int, default=1000)
    a("--n-test", type=int, default=2000)
    a("--n-heldout", type=int, default=1000, help="held-out-locale dates")
    a("--min-len", type=int, default=1, help="algorithmic tasks: shortest string")
    a("--max-len", type=int, default=12, help="algorithmic tasks: longest string")
    add_model_flags(p)
    a("--num-layers", type=int, help="layers of a one-stack model, --model decoder-only or encoder-only "
                                     "(default: --num-encoder-layers + --num-decoder-layers)")
    a("--lm-loss", choices=("target", "sequence"), default="target",
      help="--model decoder-only: the loss on the target tokens only (default), or on the whole sequence")
    # optimisation
    a("--batch-size", type=int, help="sentences per global batch")
    a("--lr", type=float, help="peak learning rate, reached at the end of warmup")
    a("--warmup", type=int, help="linear warmup steps, then lr * sqrt(warmup / step)")
    a("--weight-decay", type=float); a("--clip", type=float, help="max gradient norm (0: off)")
    a("--label-smoothing", type=float)
    a("--steps", type=int, help="stop after this many optimizer steps in total")
    a("--time-budget", type=float, help="stop after this many seconds of training (0: no limit)")
    a("--clock", choices=("wall", "cpu"), default="wall",
      help="what --time-budget and --eval-every count: wall-clock seconds, or this process's CPU seconds "
           "divided by --threads (a fairer measure on a machine shared with other jobs)")
    # evaluation
    a("--eval-every", type=float, default=0.0, help="evaluate every N seconds of training (0: only at the end)")
    a("--eval-split", default="valid", help="split for evaluations during training")
    a("--eval-limit", type=int, default=500, help="examples per evaluation during training")
    a("--beam-size", type=int, default=4, help="beam search at the end (encoder-decoder only; 0: none)")
    a("--beam-limit", type=int, default=200, help="examples decoded with beam search at the end (slow)")
    a("--ckpt-every", type=int, default=0, help="write a checkpoint every N steps (0: at the end only)")
    a("--no-progress", action="store_true", help="no tqdm bar")
    a("--no-plot", action="store_true")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    pre, _ = parser.parse_known_args(argv)
    if pre.preset not in PRESETS:
        raise TrainError(f"unknown preset {pre.preset!r}; choose one of {tuple(PRESETS)}")
    parser.set_defaults(**PRESETS[pre.preset])
    args = parser.parse_args(argv)
    if args.task not in TASKS:
        raise TrainError(f"unknown task {args.task!r}; choose one of {TASKS} (a TSV corpus: --task tsv --tsv FILE)")
    if args.task == "tsv" and not args.tsv:
        raise TrainError("--task tsv needs --tsv FILE (source<TAB>target per line)")
    if args.model not in FAMILIES:
        raise TrainError(f"unknown model {args.model!r}; choose one of {MODELS}")
    FAMILIES[args.model].check(args)
    return args


def resolve_device(name: str) -> torch.device:
    cuda, mps = torch.cuda.is_available(), getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name.startswith("cuda") and not cuda:
        raise TrainError(f"--device {name} was asked for but no CUDA GPU is visible to PyTorch; use --device cpu or --device auto")
    if name == "mps" and not mps:
        raise TrainError("--device mps was asked for but the MPS backend is not available; use --device cpu or --device auto")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise TrainError(f"unknown device {name!r}; choose cpu, cuda, mps or auto")
    return torch.device(name)


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------

def load_splits(args) -> dict[str, list[D.Pair]]:
    if args.task in D.ALGORITHMIC_TASKS:
        mk = lambda n, s: D.algorithmic_pairs(args.task, n, args.min_len, args.max_len, seed=s)
        return {"train": mk(args.n_train, args.seed * 10 + 1), "valid": mk(args.n_valid, args.seed * 10 + 2),
                "test": mk(args.n_test, args.seed * 10 + 3)}
    if args.task == "dates":
        return D.dates_splits(args.n_train, args.n_valid, args.n_test, args.n_heldout, seed=args.seed)
    if args.task == "locale":
        return D.locale_splits(args.n_train, args.n_valid, args.n_test, seed=args.seed)
    return D.split_pairs(D.read_tsv(args.tsv), seed=args.seed)


def build_vocabs(args, train: list[D.Pair]):
    srcs, tgts = [s for s, _ in train], [t for _, t in train]
    if args.shared_vocab:
        v = build_vocab(args.tokenizer, srcs + tgts, args.bpe_vocab_size)
        return v, v
    return build_vocab(args.tokenizer, srcs, args.bpe_vocab_size), build_vocab(args.tokenizer, tgts, args.bpe_vocab_size)


def model_flags(args) -> dict:
    """The model flags that are set (by the command line or the preset)."""
    return {f.name: getattr(args, f.name) for f in model_fields() if getattr(args, f.name, None) is not None}


def model_config(args, src_vocab, tgt_vocab, max_len: int) -> TransformerConfig:
    """The config of ``args``' model flags (those left unset keep the dataclass default) and of the data."""
    flags = model_flags(args)
    try:
        return TransformerConfig(src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab), max_len=max_len,
                                 pad_id=PAD_ID, use_sdpa=args.sdpa, **flags)
    except ValueError as e:  # TransformerConfig.__post_init__: e.g. d_model not divisible by num_heads
        raise TrainError(f"bad model options: {e}") from None


# Fields that may differ between a checkpoint and the run resuming it (they do not change the weights' meaning).
_RESUMABLE_DIFFERENCES = {"use_sdpa"}


def check_same_config(path, saved: dict, now: dict) -> None:
    diffs = [f"{k}={saved.get(k)!r} (now {now.get(k)!r})" for k in sorted(set(saved) | set(now))
             if k not in _RESUMABLE_DIFFERENCES and saved.get(k) != now.get(k)]
    if diffs:
        raise TrainError(f"checkpoint {path} has a different config: {', '.join(diffs)}; "
                         "pass the options it was trained with, or drop --resume")


# ------------------------------------------------------------------------------------------------
# Model families: what an encoder-decoder, a decoder-only and an encoder-only model do differently
# ------------------------------------------------------------------------------------------------

class Family:
    """The encoder-decoder ``Transformer``: the loop's questions about a model family, answered for it.

    A batch is a pair of tensors (inputs, targets). The loop asks a family for its vocabularies, its
    dataset (whose ``lengths`` bucket the batches and size the positions), its config and model, the
    module that DDP and torch.compile wrap (its forward gives the logits that are trained), the loss of
    the logits, the number of predictions in a batch (each process's share of the loss is counted in
    them) and the final evaluation. Here: inputs = src (B, S), targets = BOS + target + EOS (B, T + 1);
    the decoder reads targets[:, :-1] and predicts targets[:, 1:] (teacher forcing).
    """
    name = "encoder-decoder"
    metric = "exact_match"  # the headline of an evaluation

    def check(self, args) -> None:
        """Raise a one-line ``TrainError`` for an option this family cannot honour."""

    def vocabs(self, args, train: list[D.Pair]):
        return build_vocabs(args, train)

    def dataset(self, pairs, src_vocab, tgt_vocab):
        return D.PairDataset(pairs, src_vocab, tgt_vocab)

    def collate(self, args):
        return D.collate_pairs

    def config(self, args, src_vocab, tgt_vocab, max_len: int):
        return model_config(args, src_vocab, tgt_vocab, max_len)

    def model(self, config) -> torch.nn.Module:
        return Transformer(config)

    def trainable(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def forward(self, train_model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return train_model(inputs, targets[:, :-1])  # (B, T, V)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
        return label_smoothed_cross_entropy(logits, targets[:, 1:], PAD_ID, smoothing)

    def count(self, targets: torch.Tensor) -> int:
        return int(targets[:, 1:].ne(PAD_ID).sum())  # the target tokens predicted

    def evaluate(self, model, pairs, src_vocab, tgt_vocab, device) -> dict:
        """The headline evaluation (greedy), also run during training."""
        return evaluate(model, pairs, src_vocab, tgt_vocab, device)

    def final(self, model, pairs, src_vocab, tgt_vocab, device, args) -> dict:
        bleu = args.task == "tsv"
        out = {"greedy": evaluate(model, pairs, src_vocab, tgt_vocab, device, bleu=bleu)}
        if args.beam_size and args.beam_limit:
            out["beam"] = evaluate(model, pairs[: args.beam_limit], src_vocab, tgt_vocab, device,
                                   beam_size=args.beam_size, bleu=bleu)
        return out


def stack_config(cls, args, vocab_size: int, max_len: int, **fields):
    """A one-stack model's config (``DecoderOnlyConfig``, ``EncoderOnlyConfig``) from the model flags that
    it has (d_model, num_heads, d_ff, dropout, positional, norm_first, ...) and ``--num-layers``."""
    names = {f.name for f in dataclasses.fields(cls)}
    flags = {k: v for k, v in model_flags(args).items() if k in names}
    layers = args.num_layers or (args.num_encoder_layers or 6) + (args.num_decoder_layers or 6)
    try:
        return cls(vocab_size=vocab_size, num_layers=layers, max_len=max_len, pad_id=PAD_ID, **flags, **fields)
    except ValueError as e:  # StackConfig.__post_init__: e.g. positional "none", which the stacks lack
        raise TrainError(f"bad model options for --model {args.model}: {e}") from None


def check_one_stack(args) -> None:
    if args.sdpa:
        raise TrainError(f"--sdpa is an option of --model encoder-decoder; drop it for --model {args.model} "
                         "(its layers use the explicit attention path)")


class DecoderOnly(Family):
    """``DecoderOnlyLM`` on a sequence-to-sequence task written as one sequence ``source <sep> target <eos>``
    (the separator is BOS: ``D.SEP_ID``), in one vocabulary for both sides.

    inputs = that sequence (B, L); targets = the labels (B, L) of ``D.PromptDataset.collate``: by default
    (``--lm-loss target``) the target tokens and EOS, padding elsewhere, so ``causal_lm_loss`` trains on
    the answer only. That is the fair comparison with the encoder-decoder, whose loss is on the same
    tokens: the source is given, not predicted, and learning to predict it (``--lm-loss sequence``, the
    loss of a language model pre-trained on plain text) would spend capacity and steps on guessing
    random dates, which the task never asks for. Evaluation continues ``source <sep>`` greedily with the
    KV cache (``DecoderOnlyLM.generate``); the library has no beam search for it, so ``--beam-size`` is
    not used.
    """
    name = "decoder-only"

    def check(self, args) -> None:
        check_one_stack(args)
        if not args.shared_vocab:
            raise TrainError("--model decoder-only reads source and target as one sequence in one vocabulary; "
                             "use --shared-vocab")

    def vocabs(self, args, train):
        vocab = build_vocab(args.tokenizer, [s for s, _ in train] + [t for _, t in train], args.bpe_vocab_size)
        return vocab, vocab

    def dataset(self, pairs, src_vocab, tgt_vocab):
        return D.PromptDataset(pairs, src_vocab, tgt_vocab)

    def collate(self, args):
        return functools.partial(D.PromptDataset.collate, target_only=args.lm_loss == "target")

    def config(self, args, src_vocab, tgt_vocab, max_len: int):
        return stack_config(DecoderOnlyConfig, args, len(src_vocab), max_len)

    def model(self, config) -> torch.nn.Module:
        return DecoderOnlyLM(config)  # initialised as the encoder-decoder (reset_parameters)

    def forward(self, train_model, inputs, targets):
        return train_model(inputs)  # (B, L, V)

    def loss(self, logits, targets, smoothing):
        if smoothing:  # causal_lm_loss's shift, with the loop's label smoothing
            return label_smoothed_cross_entropy(logits[:, :-1], targets[:, 1:], PAD_ID, smoothing)
        return causal_lm_loss(logits, targets, PAD_ID)

    def evaluate(self, model, pairs, src_vocab, tgt_vocab, device):
        return evaluate_lm(model, pairs, src_vocab, device)

    def final(self, model, pairs, src_vocab, tgt_vocab, device, args):
        return {"greedy": evaluate_lm(model, pairs, src_vocab, device, bleu=args.task == "tsv")}


class _Classify(torch.nn.Module):
    """What DDP and torch.compile wrap for an encoder-only model: its forward is the model's ``classify``
    (DDP synchronises the gradients of a module's forward only)."""

    def __init__(self, model: EncoderOnlyModel):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.classify(tokens)


class EncoderOnly(Family):
    """``EncoderOnlyModel`` as a classifier, trained from scratch with the classification head (no
    masked-language-model pre-training): which CLDR locale wrote a date (``--task locale``).

    inputs = [CLS] + source (B, L), [CLS] being BOS and the pooled token; targets = class indices (B,).
    Evaluation: accuracy of the most probable class.
    """
    name = "encoder-only"
    metric = "accuracy"

    def check(self, args) -> None:
        if args.task not in CLASSIFICATION_TASKS:
            raise TrainError(f"--model encoder-only classifies, and --task {args.task} is a sequence-to-sequence "
                             f"task: use --task {' or '.join(CLASSIFICATION_TASKS)}, or --model encoder-decoder "
                             f"or decoder-only for --task {args.task}")
        check_one_stack(args)

    def vocabs(self, args, train):
        return build_vocab(args.tokenizer, [s for s, _ in train], args.bpe_vocab_size), Labels(D.LOCALE_LABELS)

    def dataset(self, pairs, src_vocab, tgt_vocab):
        return D.LabelledDataset(pairs, src_vocab, tgt_vocab)

    def collate(self, args):
        return D.LabelledDataset.collate

    def config(self, args, src_vocab, tgt_vocab, max_len: int):
        return stack_config(EncoderOnlyConfig, args, len(src_vocab), max_len, num_classes=len(tgt_vocab))

    def model(self, config):
        return EncoderOnlyModel(config)

    def trainable(self, model):
        return _Classify(model)

    def forward(self, train_model, inputs, targets):
        return train_model(inputs)  # (B, num_classes)

    def loss(self, logits, targets, smoothing):
        # the taught loss, each sequence one prediction; no class index is padding
        return label_smoothed_cross_entropy(logits[:, None], targets[:, None], -1, smoothing)

    def count(self, targets):
        return targets.numel()  # one prediction per sequence

    def evaluate(self, model, pairs, src_vocab, tgt_vocab, device):
        return evaluate_classifier(model, pairs, src_vocab, tgt_vocab, device)

    def final(self, model, pairs, src_vocab, tgt_vocab, device, args):
        return {"classify": evaluate_classifier(model, pairs, src_vocab, tgt_vocab, device)}


FAMILIES = {f.name: f for f in (Family(), DecoderOnly(), EncoderOnly())}
assert tuple(FAMILIES) == MODELS


# ------------------------------------------------------------------------------------------------
# The training state and its checkpoints
# ------------------------------------------------------------------------------------------------

@dataclass
class TrainState:
    """What the loop advances and a checkpoint holds. The RNG states are global (Python, numpy, torch):
    ``save_checkpoint`` reads them when it writes, ``restore_state`` sets them back."""
    model: torch.nn.Module  # the family's: a Transformer, DecoderOnlyLM or EncoderOnlyModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    src_vocab: object
    tgt_vocab: object
    device: torch.device
    step: int = 0  # optimizer steps taken
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of this epoch already trained on: a resume skips them
    train_seconds: float = 0.0  # wall-clock seconds spent in training steps (not evaluation)
    cpu_seconds: float = 0.0  # this process's CPU seconds in training steps
    metrics: dict = field(default_factory=dict)  # args, config, ..., "history" (one row per step), "evals"
    family: Family = FAMILIES["encoder-decoder"]

    @property
    def config(self):
        return self.model.config


def new_state(args, config, src_vocab, tgt_vocab, device: torch.device, world: int) -> TrainState:
    """A fresh model of ``--model``'s family (initialised from the global torch RNG), the taught optimiser and
    schedule, a GradScaler."""
    family = FAMILIES[args.model]
    model = family.model(config).to(device)
    optimizer, scheduler = make_optimizer(model, args.lr, args.warmup, args.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")
    metrics = {"args": vars(args), "model": family.name, "config": asdict(config), "device": str(device),
               "world_size": world, "history": [], "evals": []}
    return TrainState(model, optimizer, scheduler, scaler, src_vocab, tgt_vocab, device, metrics=metrics,
                      family=family)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(path: Path, state: TrainState, args) -> None:
    """Everything a resume needs to continue as if never stopped, the RNG states included."""
    torch.save({"model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
                "scheduler": state.scheduler.state_dict(), "scaler": state.scaler.state_dict(), "step": state.step,
                "epoch": state.epoch, "batch_in_epoch": state.batch_in_epoch, "train_seconds": state.train_seconds,
                "cpu_seconds": state.cpu_seconds, "rng": rng_state(), "config": asdict(state.config),
                "args": vars(args), "vocab": {"src": state.src_vocab.to_dict(), "tgt": state.tgt_vocab.to_dict()},
                "history": state.metrics["history"], "evals": state.metrics["evals"]}, path)


def load_checkpoint(path) -> dict:
    """A checkpoint of ``save_checkpoint``: our own file, so read with ``weights_only=False`` (it holds the RNG states)."""
    if not Path(path).is_file():
        raise TrainError(f"checkpoint not found: {path}")
    return torch.load(path, map_location="cpu", weights_only=False)


def restore_state(state: TrainState, ckpt: dict) -> None:
    """Continue from ``ckpt``: weights, optimiser, schedule, scaler, counters, metrics so far, and the RNG states
    (set last: building the model has drawn from the RNG)."""
    state.model.load_state_dict(ckpt["model"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    state.scaler.load_state_dict(ckpt["scaler"])
    state.step, state.epoch, state.batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
    state.train_seconds, state.cpu_seconds = ckpt["train_seconds"], ckpt["cpu_seconds"]
    state.metrics["history"], state.metrics["evals"] = ckpt["history"], ckpt["evals"]
    set_rng_state(ckpt["rng"])


# ------------------------------------------------------------------------------------------------
# One step
# ------------------------------------------------------------------------------------------------

def dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment, (0, 1, 0) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def train_batch(state: TrainState, train_model, src: torch.Tensor, tgt: torch.Tensor, args, rank: int = 0,
                world: int = 1, autocast=contextlib.nullcontext) -> tuple[float, int]:
    """One optimizer step on a global batch src (B, S), tgt (B, T + 1); returns (its mean loss, its target tokens).

    The steps of the taught ``attnlab.objectives.train_step`` (teacher forcing, ``label_smoothed_cross_entropy``,
    zero the gradients, backward, clip, optimizer step, schedule step), and what a real run adds to them:

    - data parallelism: this process trains on rows ``rank::world``; its mean loss is scaled by
      ``world * (its target tokens) / (the global batch's)``, so that the gradients DDP averages over
      processes are those of the global batch's mean loss (with one process the factor is exactly 1);
    - autocast around the forward pass (the loss is computed in float32), and for fp16 a GradScaler that
      multiplies the loss before backward (small fp16 gradients underflow to 0 otherwise) and divides the
      gradients back before they are clipped;
    - ``train_model`` may be ``state.model`` wrapped by DDP or torch.compile; clipping acts on the parameters;
    - the model family (``--model``, ``state.family``) turns the batch into logits and a loss: the
      encoder-decoder's as above; for a decoder-only model src is ``source <sep> target <eos>`` (B, L) and
      tgt its labels (B, L), for an encoder-only classifier src is [CLS] + source and tgt the classes (B,).
    """
    family = state.family  # the encoder-decoder's steps are written out in the comments
    n_tokens = family.count(tgt)  # int(tgt[:, 1:].ne(PAD_ID).sum()) over the global batch, on the CPU (no GPU sync)
    src, tgt = src[rank::world], tgt[rank::world]
    share = world * family.count(tgt) / n_tokens
    src, tgt = src.to(state.device, non_blocking=True), tgt.to(state.device, non_blocking=True)
    state.model.train()
    with autocast():
        logits = family.forward(train_model, src, tgt)  # train_model(src, tgt[:, :-1]): (B, T, V)
    # label_smoothed_cross_entropy(logits, tgt[:, 1:], PAD_ID, smoothing), in float32
    loss = family.loss(logits.float(), tgt, args.label_smoothing) * share
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    if args.clip:
        state.scaler.unscale_(state.optimizer)
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), args.clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.scheduler.step()
    logged = loss.detach() / world
    if world > 1:
        torch.distributed.all_reduce(logged)
    return logged.item(), n_tokens  # .item() is the sync point: the step is done


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(model, pairs, src_vocab, tgt_vocab, device, beam_size: int = 0, batch_size: int = 256,
             max_new: int | None = None, bleu: bool = False) -> dict:
    """Exact match, token accuracy (and BLEU) of greedy (``beam_size`` 0) or beam-search outputs."""
    if not pairs:
        return {}
    rows = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        src = D.pad_batch([src_vocab.encode(s) for s, _ in chunk]).to(device)
        refs = [tgt_vocab.encode(t, add_eos=True) for _, t in chunk]
        n = max_new or max(len(r) for r in refs) + 10
        n = min(n, model.config.max_len - 1)
        if beam_size:
            out = beam_search(model, src, BOS_ID, EOS_ID, n, beam_size=beam_size, use_cache=True)
        else:
            out = greedy_decode(model, src, BOS_ID, EOS_ID, n, use_cache=True)
        rows += out.tolist()
    return score_outputs(pairs, rows, tgt_vocab, bleu)


@torch.no_grad()
def evaluate_lm(model: DecoderOnlyLM, pairs, vocab, device, batch_size: int = 256, max_new: int | None = None,
                bleu: bool = False) -> dict:
    """Exact match, token accuracy (and BLEU) of a decoder-only model's greedy answers, as ``evaluate``'s.

    Each prompt ``source <sep>`` is continued by ``model.generate`` (KV cache) until EOS. Prompts of one
    length share a batch: the model expects padding at the end of a row only, never inside a prompt.
    """
    if not pairs:
        return {}
    model.eval()
    prompts = [vocab.encode(s) + [D.SEP_ID] for s, _ in pairs]
    rows: list[list[int]] = [[] for _ in pairs]  # a prompt too long for max_len gets the empty answer
    by_length = sorted(range(len(pairs)), key=lambda i: len(prompts[i]))
    for length, same in itertools.groupby(by_length, key=lambda i: len(prompts[i])):
        same = list(same)
        for start in range(0, len(same), batch_size):
            chunk = same[start:start + batch_size]
            n = max_new or max(len(vocab.encode(pairs[i][1])) for i in chunk) + 11  # + EOS, as evaluate's
            n = min(n, model.config.max_len - length)
            if n <= 0:
                continue
            out = model.generate(torch.tensor([prompts[i] for i in chunk], device=device), n, use_cache=True,
                                 eos_id=EOS_ID)
            for i, row in zip(chunk, out[:, length:].tolist()):
                rows[i] = row
    return score_outputs(pairs, rows, vocab, bleu)


def score_outputs(pairs, rows: list[list[int]], tgt_vocab, bleu: bool = False) -> dict:
    """Exact match of the decoded texts, token accuracy of the ids (against target + EOS), BLEU if asked,
    and the first five examples."""
    exact = tok_right = tok_total = 0
    hyps = []
    for row, (_, tgt) in zip(rows, pairs):
        ref = tgt_vocab.encode(tgt, add_eos=True)
        text = tgt_vocab.decode(row)
        hyps.append(text)
        exact += text == tgt
        tok_right += sum(a == b for a, b in zip(row, ref))
        tok_total += len(ref)
    result = {"n": len(pairs), "exact_match": exact / len(pairs), "token_accuracy": tok_right / tok_total}
    if bleu:
        import sacrebleu

        result["bleu"] = sacrebleu.corpus_bleu(hyps, [[t for _, t in pairs]]).score
    result["examples"] = [{"source": s, "target": t, "output": h} for (s, t), h in list(zip(pairs, hyps))[:5]]
    return result


@torch.no_grad()
def evaluate_classifier(model: EncoderOnlyModel, pairs, vocab, labels: Labels, device, batch_size: int = 256) -> dict:
    """Accuracy of an encoder-only classifier's most probable class, and the first five examples."""
    if not pairs:
        return {}
    model.eval()
    data = D.LabelledDataset(pairs, vocab, labels)
    predicted = []
    for start in range(0, len(data), batch_size):
        tokens, _ = data.collate([data[i] for i in range(start, min(start + batch_size, len(data)))])
        predicted += model.classify(tokens.to(device)).argmax(-1).tolist()
    right = sum(p == c for p, c in zip(predicted, data.labels))
    return {"n": len(pairs), "accuracy": right / len(pairs),
            "examples": [{"source": s, "target": t, "output": labels.decode(p)}
                         for (s, t), p in list(zip(pairs, predicted))[:5]]}


def save_plot(metrics: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    h = metrics["history"]
    ax[0].plot([r["step"] for r in h], [r["loss"] for r in h])
    ax[0].set(xlabel="step", ylabel="training loss (per token)", yscale="log", title="loss")
    ev = metrics["evals"]
    family = FAMILIES[metrics["model"]]
    if ev:
        ax[1].plot([e["clock_seconds"] for e in ev], [100 * e[family.metric] for e in ev], marker="o")
    ax[1].set(xlabel=f"training seconds ({metrics['args']['clock']} clock)",
              ylabel=f"{family.metric.replace('_', ' ')} (%)", title=f"{family.name}, {metrics['args']['eval_split']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------

def setup_process(args) -> tuple[int, int, torch.device]:
    """(rank, world size, device): joins the process group under torchrun and applies --threads."""
    rank, world, local_rank = dist_info()
    device = resolve_device(args.device)
    if world > 1:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.amp == "fp16" and device.type == "cpu":
        raise TrainError("--amp fp16 needs a GPU; on a CPU use --amp bf16 or --amp none")
    return rank, world, device


def wrap_for_training(model: torch.nn.Module, args, device: torch.device, world: int):
    """The module the steps call: DDP around the model (the family's ``trainable``) with several processes,
    then torch.compile if asked. Evaluation and checkpoints use the plain model."""
    train_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    if args.compile:
        train_model = torch.compile(train_model)
    return train_model


def train(state: TrainState, args, train_ds, splits: dict, out: Path, rank: int, world: int) -> None:
    """Steps until ``--steps`` or ``--time-budget``; evaluates every ``--eval-every`` seconds of the clock
    and checkpoints every ``--ckpt-every`` steps. Resumes mid-epoch: the batches of an epoch depend only on
    the seed and the epoch, so skipping the first ``state.batch_in_epoch`` continues where the run stopped."""
    is_main = rank == 0
    train_model = wrap_for_training(state.family.trainable(state.model), args, state.device, world)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    autocast = (lambda: torch.autocast(state.device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext

    sampler = D.BucketBatchSampler(train_ds.lengths(), args.batch_size, shuffle=True, seed=args.seed, drop_last=True)
    if len(sampler) == 0:
        raise TrainError(f"the training split has {len(train_ds)} pairs, fewer than one batch of {args.batch_size}")
    bar = None
    if is_main and not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=args.steps, initial=state.step, unit="step", dynamic_ncols=True, file=sys.stderr)
    threads = args.threads or torch.get_num_threads()
    clock = (lambda: state.train_seconds) if args.clock == "wall" else (lambda: state.cpu_seconds / threads)
    next_eval = (math.floor(clock() / args.eval_every) + 1) * args.eval_every if args.eval_every else math.inf
    budget = args.time_budget or math.inf
    stop = state.step >= args.steps or clock() >= budget
    while not stop:
        sampler.set_epoch(state.epoch)
        batches = sampler.batches()[state.batch_in_epoch:]
        # Its own generator: a DataLoader iterator draws a seed from the global RNG otherwise, which
        # would shift dropout masks after a resume.
        loader = torch.utils.data.DataLoader(train_ds, batch_sampler=batches, collate_fn=state.family.collate(args),
                                             generator=torch.Generator())
        for src, tgt in loader:
            t0, c0 = time.perf_counter(), time.process_time()
            loss_value, n_tokens = train_batch(state, train_model, src, tgt, args, rank, world, autocast)
            dt = time.perf_counter() - t0
            state.step += 1
            state.batch_in_epoch += 1
            state.train_seconds += dt
            state.cpu_seconds += time.process_time() - c0
            state.metrics["history"].append({
                "step": state.step, "loss": round(loss_value, 5), "lr": state.scheduler.get_last_lr()[0],
                "tokens": n_tokens, "tokens_per_s": round(n_tokens / dt, 1),
                "train_seconds": round(state.train_seconds, 3),
                "cpu_seconds": round(state.cpu_seconds, 3)})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{n_tokens / dt:,.0f}", refresh=False)
            if args.ckpt_every and state.step % args.ckpt_every == 0 and is_main:
                save_checkpoint(out / "checkpoint.pt", state, args)
            if clock() >= next_eval:
                evaluate_during_training(state, args, splits, clock(), is_main, world, bar)
                next_eval += args.eval_every * max(1, math.ceil((clock() - next_eval) / args.eval_every + 1e-9))
            if state.step >= args.steps or clock() >= budget:
                stop = True
                break
        else:
            state.epoch += 1
            state.batch_in_epoch = 0
    if bar is not None:
        bar.close()
    if is_main:
        save_checkpoint(out / "checkpoint.pt", state, args)
    if args.eval_every:
        evaluate_during_training(state, args, splits, clock(), is_main, world, bar)


def evaluate_during_training(state: TrainState, args, splits: dict, clock_seconds: float, is_main: bool,
                             world: int, bar=None) -> None:
    """Greedy exact match (a classifier's accuracy) on ``--eval-limit`` pairs of ``--eval-split``, appended to
    ``metrics["evals"]``."""
    if is_main:
        family = state.family
        r = family.evaluate(state.model, splits[args.eval_split][: args.eval_limit], state.src_vocab,
                            state.tgt_vocab, state.device)
        state.metrics["evals"].append({"step": state.step, "train_seconds": round(state.train_seconds, 2),
                                       "cpu_seconds": round(state.cpu_seconds, 2),
                                       "clock_seconds": round(clock_seconds, 2),
                                       **{k: r[k] for k in ("exact_match", "token_accuracy", "accuracy") if k in r}})
        (bar.write if bar is not None else print)(f"step {state.step}  {clock_seconds:.0f}s  {args.eval_split} "
                                                  f"{family.metric.replace('_', ' ')} {r[family.metric]:.4f}")
    if world > 1:
        torch.distributed.barrier()


def final_evaluation(state: TrainState, args, splits: dict) -> dict:
    """On the test and held-out splits: greedy (and, for the encoder-decoder, beam search on the first
    ``--beam-limit`` pairs) or a classifier's accuracy, as the family's ``final`` says."""
    return {name: state.family.final(state.model, splits[name], state.src_vocab, state.tgt_vocab, state.device, args)
            for name in ("test", "heldout") if splits.get(name)}


def run(args) -> dict:
    """Train as ``args`` say; returns the metrics that are also written to ``out/metrics.json``."""
    rank, world, device = setup_process(args)
    out = Path(args.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    family = FAMILIES[args.model]
    ckpt = load_checkpoint(args.resume) if args.resume else None
    if ckpt is not None and ckpt["args"].get("model", "encoder-decoder") != family.name:
        raise TrainError(f"checkpoint {args.resume} is of --model {ckpt['args'].get('model', 'encoder-decoder')} "
                         f"(now {family.name}); pass that --model, or drop --resume")
    seed_everything(args.seed)
    splits = load_splits(args)
    if ckpt is not None:
        src_vocab, tgt_vocab = vocab_from_dict(ckpt["vocab"]["src"]), vocab_from_dict(ckpt["vocab"]["tgt"])
    else:
        src_vocab, tgt_vocab = family.vocabs(args, splits["train"])
    train_ds = family.dataset(splits["train"], src_vocab, tgt_vocab)
    longest = max(train_ds.lengths())  # the encoder-decoder's longer side, a decoder-only model's whole sequence
    config = family.config(args, src_vocab, tgt_vocab, max_len=max(64, 2 * longest))
    if ckpt is not None:
        check_same_config(args.resume, ckpt["config"], asdict(config))
    state = new_state(args, config, src_vocab, tgt_vocab, device, world)
    if ckpt is not None:
        restore_state(state, ckpt)

    train(state, args, train_ds, splits, out, rank, world)

    metrics = state.metrics
    if rank == 0:
        metrics.update(final=final_evaluation(state, args, splits), steps=state.step,
                       train_seconds=round(state.train_seconds, 2), cpu_seconds=round(state.cpu_seconds, 2),
                       clock=args.clock, parameters=state.model.num_parameters())
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
        if not args.no_plot:
            save_plot(metrics, out / "metrics.png")
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return metrics


def main(argv=None) -> dict:
    threads = torch.get_num_threads()
    try:
        args = parse_args(argv)
        metrics = run(args)
    except (TrainError, D.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
    finally:
        torch.set_num_threads(threads)  # --threads must not leak into a caller's process (tests, notebooks)
    if "final" in metrics:
        metric = FAMILIES[args.model].metric
        t = next(iter(metrics["final"].get("test", {}).values()), {})  # greedy, or a classifier's
        print(f"{metrics['steps']} steps in {metrics['train_seconds']:.0f} s; test {metric.replace('_', ' ')} "
              f"{t.get(metric, float('nan')):.4f}; wrote {Path(args.out) / 'metrics.json'}")
    return metrics


if __name__ == "__main__":
    main()
