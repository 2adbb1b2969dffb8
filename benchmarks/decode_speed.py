"""Greedy decoding with and without the KV cache: seconds per batch and speedup -> JSON.

    .venv/bin/python benchmarks/decode_speed.py [--threads 1] [--out benchmarks/results/decode_speed.json]

The model is untrained (the speed does not depend on the weights) and ``eos_id=-1`` never ends a row,
so every run generates exactly ``steps`` tokens. Outputs with and without the cache are checked equal.
The CPU of the machine that made the committed JSON was shared with other jobs; its load is recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from attnlab import Transformer, TransformerConfig, greedy_decode


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--src-len", type=int, default=32)
    p.add_argument("--steps", type=int, nargs="+", default=[16, 64, 128])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--preset", choices=("small", "base"), default="small")
    p.add_argument("--out", default="benchmarks/results/decode_speed.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    shape = dict(d_model=256, num_heads=4, num_encoder_layers=3, num_decoder_layers=3, d_ff=1024) if a.preset == "small" \
        else dict(d_model=512, num_heads=8, num_encoder_layers=6, num_decoder_layers=6, d_ff=2048)
    cfg = TransformerConfig(src_vocab_size=1000, tgt_vocab_size=1000, dropout=0.0, max_len=max(a.steps) + 2, **shape)
    model = Transformer(cfg).to(a.device).eval()
    src = torch.randint(4, 1000, (a.batch, a.src_len), device=a.device)
    load_before = os.getloadavg()
    rows = []
    for steps in a.steps:
        t_full, out_full = best_time(lambda: greedy_decode(model, src, 1, -1, steps), a.repeats)
        t_cache, out_cache = best_time(lambda: greedy_decode(model, src, 1, -1, steps, use_cache=True), a.repeats)
        rows.append({"new_tokens": steps, "seconds_no_cache": round(t_full, 4), "seconds_cache": round(t_cache, 4),
                     "speedup": round(t_full / t_cache, 2), "outputs_equal": bool(torch.equal(out_full, out_cache))})
        print(rows[-1], flush=True)
    result = {"benchmark": "greedy decoding, KV cache vs full prefix", "command": "python benchmarks/decode_speed.py "
              + " ".join(f"--{k.replace('_', '-')} {v}" if not isinstance(v, list) else f"--{k} " + " ".join(map(str, v))
                         for k, v in vars(a).items() if k != "out"),
              "config": vars(cfg), "batch": a.batch, "src_len": a.src_len, "threads": a.threads, "device": a.device,
              "torch": torch.__version__, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "note": "shared CPU: other jobs ran at the same time (see loadavg); take ratios, not absolute times",
              "results": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
