"""What a grading node runs for one submission sent by another machine (a Dask worker, today):
plain data in, plain data out, and nothing that needs Dask.

    task = {"assignment": "ps02_attention", "fingerprint": "<the coordinator's checks>",
            "limits": {...} or None, "submission": collect.read_submission(path)}
    grade_task(task) -> GradeResult.to_dict()      # the JSON the cache stores

The node first proves it grades as the coordinator would: the same checks (their fingerprint) and
a sandbox with its own network namespace (learner code must never reach the scheduler or another
node). Otherwise it raises ``GradingNodeError``, which stops the run: a misconfigured node must
not hand learners grades. The notebook's bytes travel with the task (nodes need not share a file
system) and go to a private temporary folder under the notebook's own file name, so that every
message reads as it would on the coordinator.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import traceback

from autograder.protocol import Limits

from . import runner, sandbox
from .cache import checks_fingerprint


class GradingNodeError(RuntimeError):
    """This node cannot grade for this run (other checks, no sandbox): the instructor's to fix."""


def task_for(assignment: str, fingerprint: str, limits: Limits | None, submission: dict) -> dict:
    return {"assignment": assignment, "fingerprint": fingerprint,
            "limits": dataclasses.asdict(limits) if limits is not None else None, "submission": submission}


def _check_node(assignment: str, fingerprint: str) -> str:
    """This node's sandbox mode, once it has shown that it may grade this run."""
    node = socket.gethostname()
    try:
        mine = checks_fingerprint(assignment)
    except ValueError as exc:  # no such assignment here: another version of the course
        raise GradingNodeError(f"grading node {node}: {exc}") from None
    if mine != fingerprint:
        raise GradingNodeError(
            f"grading node {node} has other checks than the coordinator (fingerprint {mine[:12]} here, "
            f"{fingerprint[:12]} there): install the same checkout of the course on every node")
    mode = sandbox.sandbox_mode()
    if mode == "none":
        raise GradingNodeError(
            f"grading node {node} has no sandbox (mode none: no namespaces, so learner code would reach the "
            "network and the scheduler): run its Dask worker where `unshare` works (see autograder/grading/README.md)")
    return mode


def _materialise(folder: str, submission: dict) -> str:
    """The submission as a file in ``folder``: its bytes, or the condition that made it unreadable."""
    name = os.fsdecode(submission.get("name") or b"submission.ipynb")
    if "/" in name or name in ("", ".", ".."):
        name = "submission.ipynb"
    path = os.path.join(folder, name)
    if submission.get("link"):
        os.symlink(os.path.join(folder, "nothing-there"), path)
    elif "data" in submission:
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(submission["data"])
    elif "size" in submission:  # too large: a sparse file gives the same size and the same message
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.truncate(int(submission["size"]))
    return path


def grade_task(task: dict) -> dict:
    """Grade one submission on this node; ``GradeResult.to_dict()``."""
    assignment = task["assignment"]
    mode = _check_node(assignment, task["fingerprint"])
    limits = Limits(**task["limits"]) if task.get("limits") else None
    with tempfile.TemporaryDirectory(prefix="ag-node-") as folder:
        path = _materialise(folder, task["submission"])
        try:
            result = runner.grade(assignment, path, limits, mode)
        except Exception:  # noqa: BLE001 - a bug of the grader on this notebook: its grade only
            result = runner.crashed(assignment, path, traceback.format_exc(limit=-3))
    return result.to_dict()
