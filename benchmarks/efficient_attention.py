"""Multi-head, grouped-query and multi-query attention in a decoder-only model (chapter 11) -> JSON.

    .venv/bin/python benchmarks/efficient_attention.py [--threads 1] [--out benchmarks/results/efficient_attention.json]

Two measurements, each with ``num_kv_heads`` = h, h/2 and 1 at the same d_model and h:

- **decoding speed**: tokens per second of cached greedy decoding (``DecoderOnlyLM.generate``,
  ``use_cache=True``) by an untrained model (speed does not depend on the weights), with the bytes of
  its KV caches. The three variants run in turn, ``--repeats`` times (interleaved, so that a change in
  the machine's load hits all three alike); the JSON keeps every time and the median.
- **quality at equal compute**: the dates task as a prompt (``attnlab.course.dates_lm``, as chapter 12's
  race: ``<bos> source = target <eos>``), the loss on the target tokens only. The three models train for the same number of steps on the same
  batches from the same initial seed, then decode the test dates greedily: exact match and the
  target loss on the validation set.

The CPU of the machine that made the committed JSON was shared with other jobs (see loadavg): compare
the variants within one run, not the absolute times across machines.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch

from attnlab.course import dates_lm
from attnlab.decoder_only import DecoderOnlyConfig, DecoderOnlyLM, causal_lm_loss
from attnlab.multihead import GroupedQueryAttention
from attnlab.train import data as D

def with_kv_heads(model: DecoderOnlyLM, num_kv_heads: int) -> DecoderOnlyLM:
    """Replace every layer's self-attention by a GroupedQueryAttention with ``num_kv_heads`` key/value
    heads (fresh weights from the global RNG; dropout and layout as the layer's own)."""
    c = model.config
    for layer in model.layers:
        old = layer.self_attn
        layer.self_attn = GroupedQueryAttention(c.d_model, c.num_heads, num_kv_heads, dropout=old.dropout)
    return model


def build(config: DecoderOnlyConfig, num_kv_heads: int, seed: int) -> DecoderOnlyLM:
    torch.manual_seed(seed)
    model = with_kv_heads(DecoderOnlyLM(config), num_kv_heads)
    model.reset_parameters()  # the course's initialisation, the new attention modules included
    return model


def kv_cache_bytes(model: DecoderOnlyLM, batch: int, length: int) -> int:
    """Bytes of the keys and values that cached decoding holds after ``length`` positions (float32)."""
    per_layer = sum(2 * layer.self_attn.num_kv_heads * layer.self_attn.d_head for layer in model.layers)
    return per_layer * batch * length * 4


# --------------------------------------------------------------------------- decoding speed
@torch.no_grad()
def decoding_speed(args, variants: list[int]) -> dict:
    config = DecoderOnlyConfig(vocab_size=64, d_model=args.d_model, num_heads=args.heads, num_layers=args.layers,
                               d_ff=4 * args.d_model, max_len=args.prompt + args.new_tokens, dropout=0.0)
    models = {kv: build(config, kv, 0).eval() for kv in variants}
    prompt = torch.randint(4, 64, (args.batch, args.prompt), generator=torch.Generator().manual_seed(1))
    for model in models.values():  # warm-up
        model.generate(prompt, min(4, args.new_tokens))
    seconds = {kv: [] for kv in variants}
    for _ in range(args.repeats):
        for kv, model in models.items():
            start = time.perf_counter()
            model.generate(prompt, args.new_tokens, use_cache=True)
            seconds[kv].append(time.perf_counter() - start)
    rows = []
    for kv, model in models.items():
        median = statistics.median(seconds[kv])
        rows.append({"num_kv_heads": kv, "parameters": model.num_parameters(),
                     "kv_cache_bytes": kv_cache_bytes(model, args.batch, args.prompt + args.new_tokens),
                     "seconds": [round(s, 4) for s in seconds[kv]], "median_seconds": round(median, 4),
                     "tokens_per_s": round(args.batch * args.new_tokens / median, 1)})
        print("decoding", rows[-1], flush=True)
    base = rows[0]["tokens_per_s"]
    for row in rows:
        row["speedup_over_mha"] = round(row["tokens_per_s"] / base, 3)
    return {"config": vars(config), "batch": args.batch, "prompt_tokens": args.prompt,
            "new_tokens": args.new_tokens, "repeats": args.repeats, "results": rows}


# --------------------------------------------------------------------------- quality
def quality(args, variants: list[int]) -> dict:
    splits = D.dates_splits(n_train=args.n_train, n_valid=300, n_test=args.n_test, n_heldout=0)
    train, valid, test = splits["train"], splits["valid"], splits["test"]
    vocab = dates_lm.prompt_vocab(train + valid + test)
    max_len = max(len(dates_lm.encode_pair(vocab, s, t)[0]) for s, t in train + valid + test) + 11
    config = DecoderOnlyConfig(vocab_size=len(vocab), d_model=args.q_d_model, num_heads=args.heads,
                               num_layers=args.q_layers, d_ff=4 * args.q_d_model, max_len=max_len, dropout=0.0)
    valid_tokens, valid_labels = dates_lm.lm_batch(vocab, valid)
    rows = []
    for seed in range(args.seeds):  # a seed fixes the initial weights and the order of the batches
        order = random.Random(seed)
        batches = [order.sample(range(len(train)), args.q_batch) for _ in range(args.q_steps)]  # the same for all
        for kv in variants:
            model = build(config, kv, seed)
            optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.q_steps,
                                                           pct_start=0.1)
            start, cpu_start = time.perf_counter(), time.process_time()
            model.train()
            for picked in batches:
                tokens, labels = dates_lm.lm_batch(vocab, [train[i] for i in picked])
                loss = causal_lm_loss(model(tokens), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
            train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
            model.eval()
            with torch.no_grad():
                valid_loss = causal_lm_loss(model(valid_tokens), valid_labels).item()
            em = dates_lm.exact_match(model, vocab, test)[0]
            rows.append({"num_kv_heads": kv, "seed": seed, "parameters": model.num_parameters(),
                         "train_seconds": round(train_s, 1), "train_cpu_seconds": round(train_cpu_s, 1),
                         "final_train_loss": round(loss.item(), 4), "valid_target_loss": round(valid_loss, 4),
                         "test_exact_match": round(em, 4)})
            print("quality", rows[-1], flush=True)
    summary = []
    for kv in variants:
        mine = [r for r in rows if r["num_kv_heads"] == kv]
        summary.append({"num_kv_heads": kv, "parameters": mine[0]["parameters"],
                        "valid_target_loss_mean": round(statistics.mean(r["valid_target_loss"] for r in mine), 4),
                        "valid_target_loss_min": min(r["valid_target_loss"] for r in mine),
                        "valid_target_loss_max": max(r["valid_target_loss"] for r in mine),
                        "test_exact_match_mean": round(statistics.mean(r["test_exact_match"] for r in mine), 4),
                        "train_cpu_seconds_mean": round(statistics.mean(r["train_cpu_seconds"] for r in mine), 1)})
    return {"config": vars(config), "steps": args.q_steps, "batch_size": args.q_batch, "lr": args.lr,
            "n_train": args.n_train, "n_test": args.n_test, "seeds": args.seeds, "results": rows, "summary": summary}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--heads", type=int, default=8)
    # decoding speed
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--prompt", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=240)
    p.add_argument("--repeats", type=int, default=5)
    # quality
    p.add_argument("--q-d-model", type=int, default=128)
    p.add_argument("--q-layers", type=int, default=2)
    p.add_argument("--q-batch", type=int, default=64)
    p.add_argument("--q-steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--n-train", type=int, default=20_000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/efficient_attention.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    variants = [a.heads, a.heads // 2, 1]
    load_before, cpu_start = os.getloadavg(), time.process_time()
    speed = decoding_speed(a, variants)
    trained = quality(a, variants)
    command = "python benchmarks/efficient_attention.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if k != "out")
    result = {"benchmark": "multi-head vs grouped-query vs multi-query attention: cached decoding speed, "
                           "KV cache size, quality on the dates task at equal steps",
              "command": command, "torch": torch.__version__, "python": sys.version.split()[0],
              "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": a.threads,
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "cpu_seconds": round(time.process_time() - cpu_start, 1),
              "note": "shared CPU: other jobs ran at the same time (see loadavg); compare the variants within this "
                      "run (interleaved repeats, medians), not absolute times",
              "decoding": speed, "quality": trained}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
