"""The learner's side: self-check messages, and the notebooks' own cells (visible self-checks and
the hidden in-kernel checks that plain `nbgrader autograde` runs) on the solution and the release."""
from __future__ import annotations

import os
import re

import nbformat
import pytest
import torch

from attnlab.course import compare, selfcheck
from attnlab.course.selfcheck import SelfCheckFailed, expect_shape, expect_tensor
from autograder.checks import expect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_self_check_messages_are_short_and_ordered(capsys):
    expect_tensor("w", torch.ones(2), torch.ones(2))
    assert "shape, dtype and values as expected" in capsys.readouterr().out
    cases = [(torch.ones(2, 3), "expected shape (3, 2), got (2, 3)"),
             (torch.ones(3, 2, dtype=torch.float64), "expected dtype torch.float32, got torch.float64"),
             (torch.full((3, 2), float("nan")), "NaN"),
             (torch.zeros(3, 2), "6 of 6 values differ; the largest difference is at index (0, 0): expected 1, got 0 "
                                 "(tolerance atol=1e-05, rtol=0.0001)")]
    for got, message in cases:
        with pytest.raises(SelfCheckFailed, match=re.escape(message)) as info:
            expect_tensor("w", got, torch.ones(3, 2))
        assert info.value._render_traceback_() == [f"\u2717 {info.value}"]  # Jupyter shows one line
    with pytest.raises(SelfCheckFailed, match="expected a tensor, got list"):
        expect_shape("out", [1, 2], (2,))


NAN, INF = float("nan"), float("inf")
# (got, expected, what tells them apart or None): one case per step of the comparison.
SAME_VERDICT = {
    "equal": (torch.ones(3, 2), torch.ones(3, 2), None),
    "within tolerance": (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0001]), None),
    "not a tensor": ([1.0, 2.0], torch.ones(2), "expected a tensor, got a list of 2 values"),
    "shape": (torch.ones(2, 3), torch.ones(3, 2), "expected shape (3, 2), got (2, 3)"),
    "dtype": (torch.ones(2, dtype=torch.float64), torch.ones(2), "expected dtype torch.float32, got torch.float64"),
    "NaN": (torch.tensor([[1.0, NAN]]), torch.ones(1, 2), "1 of 2 entries are NaN or infinite (the first at index (0, 1))"),
    "infinity": (torch.tensor([INF, 1.0]), torch.ones(2), "NaN or infinite"),
    "NaN where NaN is expected": (torch.tensor([NAN, 1.0]), torch.tensor([NAN, 1.0]), None),
    "-inf where -inf is expected": (torch.tensor([-INF, 1.0]), torch.tensor([-INF, 1.0]), None),
    "values": (torch.tensor([[0.0, 1.0], [2.0, 3.5]]), torch.arange(4.0).reshape(2, 2),
               "1 of 4 values differ; the largest difference is at index (1, 1): expected 3, got 3.5"),
    "a single number": (torch.tensor(0.25), torch.tensor(0.5), "expected 0.5, got 0.25 (tolerance"),
    "booleans": (torch.tensor([True, False]), torch.tensor([True, True]), "at index (1,): expected True, got False"),
    "integers": (torch.tensor([1, 2]), torch.tensor([1, 3]), "at index (1,): expected 3, got 2"),
}


@pytest.mark.parametrize("case", list(SAME_VERDICT))
def test_self_checks_and_grader_checks_give_the_same_verdict(case, capsys):
    """The self-check and the grader compare with one function (attnlab.course.compare): the
    same cases pass and fail, with the same message (float32 tolerances are the same in both)."""
    assert selfcheck.tensor_difference is expect.tensor_difference is compare.tensor_difference
    got, expected, message = SAME_VERDICT[case]
    outcomes = []
    for check, failure in ((lambda: expect_tensor("w", got, expected), SelfCheckFailed),
                           (lambda: expect.tensor(got, expected, "w"), expect.CheckFailed)):
        try:
            check()
            outcomes.append(None)
        except failure as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1], outcomes
    if message is None:
        assert outcomes[0] is None
    else:
        assert outcomes[0] is not None and outcomes[0].startswith("w: ") and message in outcomes[0]


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
