"""Training throughput and model-FLOPs utilisation (MFU) of the base Transformer, ours against nn.Transformer.

For each variant, one training step (forward, label-smoothed loss, backward, AdamW) is timed on
synthetic token batches, and its FLOPs are counted once with ``torch.utils.flop_counter`` on the eager
model (matrix products and attention; the same arithmetic whether compiled or not). Writes JSON:

    python benchmarks/gpu_throughput.py --device cuda --size base --out benchmarks/results/gpu_throughput_h100.json

Variants: ours fp32 eager (explicit attention), ours bf16 + SDPA + torch.compile, and nn.Transformer
(same size, our embeddings and output layer) fp32 eager and bf16 + compile. MFU = counted FLOPs per second
/ ``--peak-tflops`` (default 790: dense bf16 matrix products on an H100/H200, see shared/TOOLCHAIN.md);
fp32 variants are reported against the same peak. On a CPU, ``--size tiny --no-compile`` is a smoke test.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step_time import TorchTransformerWithOurEmbeddings  # noqa: E402

from attnlab import Transformer, TransformerConfig  # noqa: E402

SIZES = {  # name: (d_model, heads, layers, d_ff, vocab, batch, src_len, tgt_len)
    "tiny": (64, 4, 2, 256, 500, 8, 16, 16),
    "base": (512, 8, 6, 2048, 37000, 64, 128, 128),  # the paper's base model, ~25k tokens per step
}


def make_model(kind: str, size: str, use_sdpa: bool, device) -> torch.nn.Module:
    d, h, n, ff, vocab, *_ = SIZES[size]
    cfg = TransformerConfig(vocab, vocab, d, h, n, n, ff, dropout=0.1, max_len=256, tie_embeddings=True,
                            use_sdpa=use_sdpa)
    ours = Transformer(cfg)
    model = ours if kind == "ours" else TorchTransformerWithOurEmbeddings(ours)
    return model.to(device)


def step_fn(model, opt, src, tgt_in, tgt_out, amp_dtype, device):
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    with autocast:
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), tgt_out.flatten(), ignore_index=0, label_smoothing=0.1)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(kind, size, amp, compile_, use_sdpa, device, steps, warmup, peak_tflops):
    d, h, n, ff, vocab, B, S, T = SIZES[size]
    torch.manual_seed(0)
    model = make_model(kind, size, use_sdpa, device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    g = torch.Generator().manual_seed(1)
    src = torch.randint(3, vocab, (B, S), generator=g).to(device)
    tgt = torch.randint(3, vocab, (B, T + 1), generator=g).to(device)
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
    amp_dtype = {"bf16": torch.bfloat16, "fp32": None}[amp]
    with FlopCounterMode(display=False) as counter:  # eager, before compiling
        step_fn(model, opt, src, tgt_in, tgt_out, amp_dtype, device)
    flops = counter.get_total_flops()
    run = torch.compile(model) if compile_ else model
    for _ in range(warmup):
        step_fn(run, opt, src, tgt_in, tgt_out, amp_dtype, device)
    times = []
    for _ in range(steps):
        sync(device)
        t0 = time.perf_counter()
        step_fn(run, opt, src, tgt_in, tgt_out, amp_dtype, device)
        sync(device)
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    tokens = B * (S + T)
    row = dict(model=kind, amp=amp, compile=compile_, sdpa=use_sdpa, step_s=t, tokens_per_s=tokens / t,
               flops_per_step=flops, achieved_tflops=flops / t / 1e12, mfu=flops / t / (peak_tflops * 1e12),
               parameters=sum(p.numel() for p in model.parameters()))
    if device.type == "cuda":
        row["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--size", default="base", choices=list(SIZES))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--peak-tflops", type=float, default=790.0)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (CPU smoke tests)")
    ap.add_argument("--out", default="benchmarks/results/gpu_throughput.json")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU is visible here; run on a GPU machine or pass --device cpu --size tiny")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32: the baseline is the plain one
    compile_ = not args.no_compile
    variants = [("ours", "fp32", False, False), ("ours", "bf16", compile_, True),
                ("torch", "fp32", False, False), ("torch", "bf16", compile_, True)]
    rows = []
    for kind, amp, comp, sdpa in variants:
        row = measure(kind, args.size, amp, comp, sdpa, device, args.steps, args.warmup, args.peak_tflops)
        print(json.dumps(row))
        rows.append(row)
    by = {(r["model"], r["amp"]): r for r in rows}
    summary = {
        "ours_fast_over_ours_fp32_eager": by["ours", "bf16"]["tokens_per_s"] / by["ours", "fp32"]["tokens_per_s"],
        "ours_fast_over_torch_fast": by["ours", "bf16"]["tokens_per_s"] / by["torch", "bf16"]["tokens_per_s"],
        "ours_fast_mfu": by["ours", "bf16"]["mfu"],
    }
    meta = dict(command="python benchmarks/gpu_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                device=str(device), device_name=torch.cuda.get_device_name() if device.type == "cuda" else platform.processor(),
                torch=torch.__version__, size=dict(zip(("d_model", "heads", "layers", "d_ff", "vocab", "batch", "src_len", "tgt_len"), SIZES[args.size])),
                peak_tflops=args.peak_tflops, steps=args.steps, warmup=args.warmup)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "summary": summary, "results": rows}, f, indent=2)
    print(json.dumps(summary), "->", args.out)
    return summary


if __name__ == "__main__":
    main()
