"""benchmarks/efficient_attention.py runs end to end at a smoke size and writes what chapter 11 reads."""
import json
import runpy
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "efficient_attention.py"


def test_smoke_run_writes_speed_cache_size_and_quality(tmp_path):
    out = tmp_path / "efficient.json"
    old = sys.argv
    sys.argv = [str(SCRIPT), "--heads", "4", "--d-model", "16", "--layers", "1", "--batch", "2", "--prompt", "3",
                "--new-tokens", "3", "--repeats", "2", "--q-d-model", "16", "--q-layers", "1", "--q-batch", "4",
                "--q-steps", "2", "--n-train", "40", "--n-test", "4", "--seeds", "2", "--out", str(out)]
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        sys.argv = old
    data = json.loads(out.read_text())
    assert data["command"].startswith("python benchmarks/efficient_attention.py --threads 1 --heads 4")
    speed = data["decoding"]["results"]
    assert [r["num_kv_heads"] for r in speed] == [4, 2, 1]
    assert [r["kv_cache_bytes"] for r in speed] == [speed[0]["kv_cache_bytes"] // g for g in (1, 2, 4)]
    assert all(len(r["seconds"]) == 2 and r["tokens_per_s"] > 0 for r in speed)
    quality = data["quality"]["results"]
    assert [(r["num_kv_heads"], r["seed"]) for r in quality] == [(4, 0), (2, 0), (1, 0), (4, 1), (2, 1), (1, 1)]
    assert all(0 <= r["test_exact_match"] <= 1 and r["valid_target_loss"] > 0 for r in quality)
    assert quality[0]["parameters"] > quality[1]["parameters"] > quality[2]["parameters"]
    summary = data["quality"]["summary"]
    assert [r["num_kv_heads"] for r in summary] == [4, 2, 1]
    assert all(r["valid_target_loss_min"] <= r["valid_target_loss_mean"] <= r["valid_target_loss_max"] for r in summary)
