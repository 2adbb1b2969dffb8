"""Forward + backward time of our Transformer against nn.Transformer of the same size, in one run.

Both models get the same embeddings, positional encoding and output layer (ours), so the comparison
is between the two encoder-decoder stacks. Writes JSON with the median step times and their ratio
(ours / PyTorch; below 1.0 means ours is faster).

    python benchmarks/step_time.py --device cpu --out benchmarks/results/step_time_cpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn as nn

from attnlab import Transformer, TransformerConfig, causal_mask

SIZES = {  # name: (d_model, heads, layers, d_ff, batch, src_len, tgt_len)
    "tiny": (64, 4, 2, 256, 64, 24, 12),
    "small": (128, 4, 2, 512, 32, 32, 32),
    "medium": (256, 8, 4, 1024, 16, 64, 64),
}


class TorchTransformerWithOurEmbeddings(nn.Module):
    """nn.Transformer between our model's embedding and output layers."""

    def __init__(self, ours: Transformer):
        super().__init__()
        c = ours.config
        self.ours = ours
        self.core = nn.Transformer(c.d_model, c.num_heads, c.num_encoder_layers, c.num_decoder_layers, c.d_ff,
                                   dropout=c.dropout, batch_first=True, norm_first=c.norm_first)

    def forward(self, src, tgt):
        o = self.ours
        T = tgt.size(1)
        out = self.core(
            o.embed(o.src_embed, o.src_pos, src), o.embed(o.tgt_embed, o.tgt_pos, tgt),
            tgt_mask=~causal_mask(T, tgt.device), src_key_padding_mask=src == 0,
            tgt_key_padding_mask=tgt == 0, memory_key_padding_mask=src == 0, tgt_is_causal=False,
        )
        return o.generator(out)


def time_steps(model, src, tgt, steps, warmup, device):
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        logits = model(src, tgt)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), tgt.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--out", default="benchmarks/results/step_time_cpu.json")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    results = []
    for name in args.sizes:
        d, h, n, ff, B, S, T = SIZES[name]
        row = {"size": name, "d_model": d, "num_heads": h, "layers": n, "d_ff": ff, "batch": B, "src_len": S, "tgt_len": T}
        src = torch.randint(3, 100, (B, S), device=device)
        tgt = torch.randint(3, 100, (B, T), device=device)
        for use_sdpa in (False, True):
            cfg = TransformerConfig(100, 100, d, h, n, n, ff, args.dropout, max_len=128, use_sdpa=use_sdpa)
            ours = Transformer(cfg).to(device)
            theirs = TorchTransformerWithOurEmbeddings(Transformer(cfg)).to(device)
            # alternate the two to share any drift in machine load fairly
            t_ours, t_theirs = [], []
            for _ in range(3):
                t_ours.append(time_steps(ours, src, tgt, args.steps, args.warmup, device))
                t_theirs.append(time_steps(theirs, src, tgt, args.steps, args.warmup, device))
            key = "sdpa" if use_sdpa else "explicit"
            row[f"ours_{key}_s"] = min(t_ours)
            row[f"torch_{key}_s"] = min(t_theirs)
            row[f"ratio_{key}"] = min(t_ours) / min(t_theirs)
        print(json.dumps(row))
        results.append(row)
    meta = {
        "command": "python benchmarks/step_time.py " + " ".join(f"--{k} {v}" if not isinstance(v, list) else f"--{k} {' '.join(v)}" for k, v in vars(args).items()),
        "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "loadavg_1min_at_end": os.getloadavg()[0],
        "what": "median forward+backward+SGD step time, best of 3 alternating rounds; ratio = ours / nn.Transformer",
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
