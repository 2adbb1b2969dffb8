"""A small scaling-law study: validation loss of character-level decoder-only LMs of several sizes, each
recorded at several step counts of one run, against the training compute C = 6 N D.

    python benchmarks/scaling_law.py [--sizes 16x1 32x2 48x2 64x3 96x4] [--steps 1000] [--threads 1]

The text: lines ``written date<TAB>ISO date`` of the dates task (:func:`attnlab.train.data.date_pairs`,
26 locales, three formats), one line per sequence ``BOS chars EOS``, characters as tokens
(:class:`attnlab.train.tokenizers.CharVocab`). The models: :class:`attnlab.DecoderOnlyLM` (pre-norm,
learned positions, tied output, d_ff = 4 d_model, heads of 16 dimensions, no dropout, the token
embedding drawn from N(0, 1/d_model) as in :class:`attnlab.Transformer`), the same seed,
data order, optimizer and constant learning rate for every size. Each run evaluates the validation
loss (nats per predicted token, padding excluded) at log-spaced step counts, so one run gives several
points (with a constant learning rate an intermediate checkpoint is a fair stand-in for a shorter run).

N = the non-embedding parameters (all but the token and position embeddings; the output layer is tied
to the token embedding), D = the tokens seen so far (the predicted, non-padding tokens of the batches),
C = 6 N D (Kaplan et al., 2020: forward + backward is about 6 FLOPs per parameter per token). Writes
``benchmarks/results/scaling_law.json``.
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

from attnlab import DecoderOnlyConfig, DecoderOnlyLM, causal_lm_loss
from attnlab.tokens import PAD_ID
from attnlab.train import data as D
from attnlab.train.tokenizers import CharVocab


def non_embedding_parameters(model: DecoderOnlyLM) -> int:
    """Every parameter but the token embedding (shared with the output layer) and the position embedding."""
    embeddings = {id(model.embed.weight)} | {id(p) for p in model.pos.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in embeddings)


def encode(texts: list[str], vocab: CharVocab) -> torch.Tensor:
    """(N, L) ids: BOS + characters + EOS, padded with PAD_ID to the longest line."""
    ids = [vocab.encode(t, add_bos=True, add_eos=True) for t in texts]
    out = torch.full((len(ids), max(map(len, ids))), PAD_ID)
    for i, row in enumerate(ids):
        out[i, : len(row)] = torch.tensor(row)
    return out


def trim(batch: torch.Tensor) -> torch.Tensor:
    """Drop the columns that are padding in every row."""
    return batch[:, : int((batch != PAD_ID).sum(1).max())]


@torch.no_grad()
def validation_loss(model: DecoderOnlyLM, valid: torch.Tensor, batch: int = 256) -> float:
    """Mean next-token cross-entropy (nats) over every predicted non-padding token of ``valid``."""
    model.eval()
    total = count = 0.0
    for start in range(0, len(valid), batch):
        tokens = trim(valid[start:start + batch])
        n = int((tokens[:, 1:] != PAD_ID).sum())
        total += causal_lm_loss(model(tokens), tokens).item() * n
        count += n
    model.train()
    return total / count


def checkpoints(steps: int, count: int) -> list[int]:
    """``count`` log-spaced step counts ending at ``steps`` (halving: steps, steps/2, ...)."""
    return sorted({max(1, round(steps / 2 ** k)) for k in range(count)})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["16x1", "32x2", "48x2", "64x3", "96x4"],
                   help="d_model x layers of each model")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--checkpoints", type=int, default=5, help="log-spaced evaluations per run, the last at --steps")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--train-lines", type=int, default=16000)
    p.add_argument("--valid-lines", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/scaling_law.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    splits = D.dates_splits(n_train=a.train_lines, n_valid=a.valid_lines, n_test=0, n_heldout=0, seed=a.seed)
    lines = {k: [f"{s}\t{t}" for s, t in v] for k, v in splits.items()}
    vocab = CharVocab.build(lines["train"])
    train, valid = encode(lines["train"], vocab), encode(lines["valid"], vocab)
    data_seconds = time.perf_counter() - t0
    at = checkpoints(a.steps, a.checkpoints)
    points, runs = [], []
    for size in a.sizes:
        d_model, layers = map(int, size.split("x"))
        torch.manual_seed(a.seed)
        config = DecoderOnlyConfig(vocab_size=len(vocab), d_model=d_model, num_heads=max(1, d_model // 16),
                                   num_layers=layers, d_ff=4 * d_model, max_len=train.size(1), dropout=0.0)
        model = DecoderOnlyLM(config)
        n = non_embedding_parameters(model)
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / a.warmup))
        g = torch.Generator().manual_seed(a.seed)  # the same batches for every size
        tokens_seen, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
        for step in range(1, a.steps + 1):
            tokens = trim(train[torch.randint(len(train), (a.batch,), generator=g)])
            loss = causal_lm_loss(model(tokens), tokens)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tokens_seen += int((tokens[:, 1:] != PAD_ID).sum())
            if step in at:
                point = {"d_model": d_model, "layers": layers, "parameters": n, "steps": step,
                         "flops": float(6 * n * tokens_seen), "loss": round(validation_loss(model, valid), 5),
                         "tokens": tokens_seen}
                points.append(point)
                print(json.dumps(point), flush=True)
        runs.append({"d_model": d_model, "layers": layers, "heads": config.num_heads, "parameters": n,
                     "total_parameters": model.num_parameters(), "train_cpu_seconds": round(time.process_time() - cpu0, 1),
                     "train_seconds": round(time.perf_counter() - wall0, 1)})
    result = {
        "command": "python benchmarks/scaling_law.py " + " ".join(map(shlex.quote, argv)),
        "torch": torch.__version__,
        "points": points,
        "note": ("loss = validation cross-entropy in nats per predicted character (padding excluded) of a "
                 "character-level LM on 'written date<TAB>ISO date' lines of the dates task "
                 f"({a.train_lines} training lines, {a.valid_lines} validation lines, {len(vocab)} symbols); "
                 "parameters = N, the non-embedding parameters (token and position embeddings left out; the "
                 "output layer is tied to the token embedding); flops = 6 * N * tokens, tokens = the predicted "
                 "(non-padding) tokens seen in training up to that step (Kaplan et al., 2020). Models: "
                 "attnlab.DecoderOnlyLM, pre-norm, learned positions, d_ff = 4 d_model, 16-dimensional heads, no "
                 f"dropout, token embedding initialised N(0, 1/d_model); AdamW lr {a.lr} constant after {a.warmup} warm-up steps, batch {a.batch} lines, "
                 f"seed {a.seed}, the same batches for every size; each run is evaluated at steps {at}."),
        "runs": runs,
        "vocab_size": len(vocab),
        "data_seconds": round(data_seconds, 1),
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
