"""Data-parallel training (DDP, gloo, 2 processes on CPU) equals one process with the same global batch.

Tolerance: parameters agree to atol 1e-5 and rtol 1e-4 after 15 AdamW steps (measured: < 1e-6); the two runs
differ only in the order of floating-point sums (each process sums half of the batch, then gloo averages).
The key projections' biases are left out of that comparison: adding the same number to every score of a
query leaves the softmax unchanged, so their gradient is zero in exact arithmetic and Adam, which divides
by the gradient's size, turns rounding noise into steps of about lr. They are only checked to stay small.
"""
import os
import subprocess
import sys

import pytest
import torch

from test_train import TINY

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("family", [[], ["--model", "decoder-only", "--shared-vocab"]], ids=["encoder-decoder", "decoder-only"])
def test_ddp_two_processes_equal_one(tmp_path, family):
    args = TINY + ["--steps", "15", "--device", "cpu", "--beam-limit", "0", "--dropout", "0.0", *family]
    single = tmp_path / "single"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "attnlab.train.loop", *args, "--out", str(single)],
                   check=True, env=env, capture_output=True)
    ddp = tmp_path / "ddp"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "attnlab.train.loop", *args, "--out", str(ddp)],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    a = torch.load(single / "checkpoint.pt", weights_only=False)
    b = torch.load(ddp / "checkpoint.pt", weights_only=False)
    assert b["args"]["batch_size"] == a["args"]["batch_size"] == 16
    for k in a["model"]:
        if k.endswith("w_k.bias"):
            assert (b["model"][k] - a["model"][k]).abs().max() < 0.05, k
            continue
        torch.testing.assert_close(b["model"][k], a["model"][k], atol=1e-5, rtol=1e-4, msg=k)
    # The loss logged by the DDP run is the global-batch loss (averaged over both processes).
    la, lb = [h["loss"] for h in a["history"]], [h["loss"] for h in b["history"]]
    assert lb == pytest.approx(la, abs=1e-4)
    # And the models have moved: the comparison is not between two untouched initialisations.
    first = torch.load(single / "checkpoint.pt", weights_only=False)["history"][0]["loss"]
    assert la[-1] < first
