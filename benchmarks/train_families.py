"""Encoder-decoder against decoder-only on the dates task: equal parameters, equal steps, equal training.

    .venv/bin/python benchmarks/train_families.py [--steps 2000] [--threads 1] [--decoder-layers 5]
        [--encoder-only-steps 0] [--out benchmarks/results/train_families.json] [-- TRAIN FLAGS]

Trains ``python -m attnlab.train --task dates --preset cpu-small`` twice, once with ``--model
encoder-decoder`` (2 + 2 layers) and once with ``--model decoder-only`` (``--decoder-layers`` layers of
the same width), with the same data, vocabulary, optimiser (AdamW, warmup then inverse square root),
batch and number of steps; flags after ``--`` go to both runs. The decoder-only model reads a pair as
``source <sep> target <eos>`` and its loss is on the target alone, as the encoder-decoder's is (see
``attnlab.train.loop.DecoderOnly``). Both are evaluated by greedy decoding (KV cache), exact match on the
whole test split and on the held-out-locale split. With ``--encoder-only-steps N`` an encoder-only
classifier is trained too, on ``--task locale`` (which locale wrote a date), and its accuracy reported.

Why 5 decoder layers: an encoder layer (self-attention 4 d^2, feed-forward 2 d d_ff) of the preset
(d_ff = 2 d) has 8 d^2 weights, a decoder layer 12 d^2 (its cross-attention adds 4 d^2), so 2 + 2 layers
hold 40 d^2, as many as 5 one-stack layers; the vocabulary is shared and tied in both.

Writes, for the chapters that read it (the schema is fixed)::

    {"command", "torch", "machine", "task": "dates",
     "runs": {"encoder-decoder": R, "decoder-only": R[, "encoder-only": R']}}
    R = {"parameters", "steps", "cpu_seconds", "wall_seconds", "tokens_per_second",
         "exact_match": {"test", "heldout"}, "config": {...}}

(R' has "accuracy": {"test"} in place of "exact_match".) ``cpu_seconds`` is this process's CPU time in
training steps (not data or evaluation), ``wall_seconds`` the wall-clock time of the same steps, and
``tokens_per_second`` the target tokens trained on (the tokens the loss predicts: the same ones in both
families; sequences for the classifier) per CPU second per thread: on a machine shared with other jobs,
CPU time estimates what a dedicated machine would take (``--clock cpu`` of the CLI).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from attnlab.train import loop as T


def train_one(model: str, task: str, steps: int, a, extra: list[str]) -> tuple[dict, list[str], float]:
    """One run of the CLI; returns (its metrics, its argv, its wall seconds in all)."""
    argv = ["--task", task, "--preset", "cpu-small", "--model", model, "--device", "cpu",
            "--threads", str(a.threads), "--steps", str(steps), "--time-budget", "0", "--clock", "cpu",
            "--n-train", str(a.n_train), "--beam-size", "0", "--seed", str(a.seed),
            "--out", str(Path(a.runs) / model), "--no-progress", "--no-plot"]
    if model != "encoder-decoder":
        argv += ["--num-layers", str(a.decoder_layers)]
    argv += extra
    t0 = time.time()
    metrics = T.main(argv)
    return metrics, argv, time.time() - t0


def result(metrics: dict, argv: list[str], threads: int, total_wall: float) -> dict:
    """R of the module's schema, from a run's metrics."""
    tokens = sum(h["tokens"] for h in metrics["history"])
    cpu = metrics["cpu_seconds"]
    args = metrics["args"]
    final = metrics["final"]
    r = {"parameters": metrics["parameters"], "steps": metrics["steps"], "cpu_seconds": cpu,
         "wall_seconds": metrics["train_seconds"], "tokens_per_second": round(tokens / (cpu / threads), 1)}
    if metrics["model"] == "encoder-only":
        r["accuracy"] = {"test": final["test"]["classify"]["accuracy"]}
    else:
        r["exact_match"] = {split: final[split]["greedy"]["exact_match"] for split in ("test", "heldout")}
    r["config"] = {
        "model": metrics["model"], "architecture": metrics["config"],
        "training": {k: args[k] for k in ("task", "preset", "tokenizer", "bpe_vocab_size", "shared_vocab", "n_train",
                                          "batch_size", "lr", "warmup", "weight_decay", "clip", "label_smoothing",
                                          "seed", "threads", "clock", "lm_loss")},
        "optimizer": "AdamW betas (0.9, 0.98), eps 1e-9; linear warmup, then lr * sqrt(warmup / step)",
        "trained_tokens": tokens, "tokens_counted": "target tokens predicted (sequences, for a classifier)",
        "evaluation": "greedy decoding with the KV cache, exact match of the whole output"
                      if metrics["model"] != "encoder-only" else "most probable class",
        "test_examples": final["test"][next(iter(final["test"]))]["examples"][:3],
        "train_command": "python -m attnlab.train " + " ".join(map(shlex.quote, argv)),
        "run_wall_seconds_including_data_and_evaluation": round(total_wall, 1),
    }
    return r


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps of each model")
    p.add_argument("--decoder-layers", type=int, default=5, help="layers of the decoder-only model")
    p.add_argument("--encoder-only-steps", type=int, default=0, help="also an encoder-only classifier (0: no)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-train", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", default="runs/train_families", help="folder for the runs' checkpoints and metrics")
    p.add_argument("--out", default="benchmarks/results/train_families.json")
    a = p.parse_args(own)
    load_before = os.getloadavg()
    runs = {}
    for model in ("encoder-decoder", "decoder-only"):
        m, train_argv, wall = train_one(model, "dates", a.steps, a, extra)
        runs[model] = result(m, train_argv, a.threads, wall)
    if a.encoder_only_steps:
        m, train_argv, wall = train_one("encoder-only", "locale", a.encoder_only_steps, a, extra)
        runs["encoder-only"] = result(m, train_argv, a.threads, wall)
    machine = (f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), {a.threads} thread(s) used, "
               f"{platform.system()}; load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after "
               "(the CPUs are shared with other jobs: compare cpu_seconds, not wall_seconds)")
    out = {"command": "python benchmarks/train_families.py " + " ".join(map(shlex.quote, argv)),
           "torch": torch.__version__, "machine": machine, "task": "dates", "runs": runs}
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, r in runs.items():
        score = r.get("exact_match") or r.get("accuracy")
        print(f"{name}: {r['parameters']:,} parameters, {r['steps']} steps, {r['cpu_seconds']:.0f} CPU s, "
              f"{r['tokens_per_second']:,.0f} tokens/s, {score}")
    print("->", path)
    return out


if __name__ == "__main__":
    main()
