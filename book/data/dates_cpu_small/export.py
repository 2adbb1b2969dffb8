"""Turn a checkpoint of the training CLI into the files chapter 8 loads (run from the repository root).

    .venv/bin/python book/data/dates_cpu_small/export.py runs/ch08_dates/checkpoint.pt book/data/dates_cpu_small

``checkpoint.pt`` holds everything needed to resume (optimizer, RNG states, ...) and is read with
``weights_only=False``; it is our own file. What the book needs is written in formats that load
without unpickling anything: the weights as safetensors (tied tables stored once), the model
config and the BPE vocabulary as JSON. The CLI's ``metrics.json`` is copied beside them.
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_model

from attnlab import Transformer, TransformerConfig


def main(checkpoint: str, out: str) -> None:
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = Transformer(TransformerConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    save_model(model, str(out / "model.safetensors"), metadata={"step": str(ckpt["step"])})
    (out / "config.json").write_text(json.dumps(ckpt["config"], indent=1) + "\n", encoding="utf-8")
    (out / "vocab.json").write_text(json.dumps(ckpt["vocab"], ensure_ascii=False) + "\n", encoding="utf-8")
    shutil.copyfile(Path(checkpoint).with_name("metrics.json"), out / "metrics.json")
    print(f"step {ckpt['step']}: wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
