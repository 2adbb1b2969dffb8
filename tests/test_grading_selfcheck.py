"""The learner's side: self-check messages, and the notebooks' own cells (visible self-checks and
the hidden in-kernel checks that plain `nbgrader autograde` runs) on the solution and the release."""
from __future__ import annotations

import os
import re

import nbformat
import pytest
import torch

from attnlab.course.selfcheck import SelfCheckFailed, expect_shape, expect_tensor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_self_check_messages_are_short_and_ordered(capsys):
    expect_tensor("w", torch.ones(2), torch.ones(2))
    assert "shape, dtype and values as expected" in capsys.readouterr().out
    cases = [(torch.ones(2, 3), "expected shape (3, 2), got (2, 3)"),
             (torch.ones(3, 2, dtype=torch.float64), "expected dtype torch.float32, got torch.float64"),
             (torch.full((3, 2), float("nan")), "NaN"),
             (torch.zeros(3, 2), "expected values")]
    for got, message in cases:
        with pytest.raises(SelfCheckFailed, match=re.escape(message)) as info:
            expect_tensor("w", got, torch.ones(3, 2))
        assert info.value._render_traceback_() == [f"\u2717 {info.value}"]  # Jupyter shows one line
    with pytest.raises(SelfCheckFailed, match="expected a tensor, got list"):
        expect_shape("out", [1, 2], (2,))


@pytest.mark.slow
def test_source_notebook_runs_clean_and_release_stops_at_the_first_exercise():
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    source = nbformat.read(os.path.join(ROOT, "solutions", "ps02_attention", "ps02_attention.ipynb"), as_version=4)
    NotebookClient(source, timeout=120, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
    printed = "".join(o.get("text", "") for c in source.cells if c.cell_type == "code" for o in c.outputs)
    assert printed.count("\u2713") >= 6

    release = nbformat.read(os.path.join(ROOT, "exercises", "ps02_attention", "ps02_attention.ipynb"), as_version=4)
    with pytest.raises(CellExecutionError, match="NotImplementedError"):
        NotebookClient(release, timeout=120, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
