"""Helpers for the grading tests: build learner notebooks from the release and grade them."""
from __future__ import annotations

import os
import re

import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)


def release_notebook(assignment: str, release: str = "exercises"):
    """The released notebook of ``release`` (exercises/, or a translated release such as exercises_zh/)."""
    return nbformat.read(os.path.join(ROOT, release, assignment, assignment + ".ipynb"), as_version=4)


def solved_notebook(assignment: str, release: str = "exercises"):
    """The release with every solution cell filled from the source notebook: a perfect learner."""
    source = nbformat.read(os.path.join(ROOT, "solutions", assignment, assignment + ".ipynb"), as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: MARKERS.sub("", c.source)
               for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    nb = release_notebook(assignment, release)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def with_cells(nb, replace: dict[str, str] | None = None, append: list[str] = ()):
    """Replace the cells with these grade_ids and append new code cells."""
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if replace and grade_id in replace:
            cell.source = replace[grade_id]
    for source in append:
        cell = nbformat.v4.new_code_cell(source)
        if nb.nbformat_minor < 5:
            cell.pop("id", None)  # cell ids exist from nbformat 4.5 on
        nb.cells.append(cell)
    return nb


def detaching_cell(marker: str, main_loops: bool) -> str:
    """A cell that leaves a looping grandchild in a session of its own; the main process loops too if asked.
    Every process of it carries ``marker`` as its name (find them with ``processes_named``)."""
    return f"""
import ctypes, os, time
ctypes.CDLL(None).prctl(15, b"{marker}", 0, 0, 0)  # PR_SET_NAME: children inherit the name
child = os.fork()
if child == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            time.sleep(0.05)
    os._exit(0)
os.waitpid(child, 0)  # the go-between is gone: the grandchild is nobody's child but init's
while {main_loops}:
    time.sleep(0.05)
"""


def write(nb, path) -> str:
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    nbformat.write(nb, str(path))
    return str(path)


def mutant_header(path: str) -> dict[str, str]:
    """The ``# key: value`` lines at the top of a mutant or hostile fixture."""
    meta = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"#\s*([a-z-]+):\s*(.*)", line)
            if match:
                meta[match.group(1)] = match.group(2).strip()
    return meta


# Sandbox modes, weakest first. On a machine that supports a mode, a test that needs it must not
# pass by being skipped: `.ci/run` sets AUTOGRADER_REQUIRE_SANDBOX (and AUTOGRADER_REQUIRE_CGROUP)
# so that such a test fails instead.
SANDBOX_MODES = ("none", "user", "root")


def require_sandbox(wanted: str = "user") -> str:
    """This machine's sandbox mode; skip the test when it is weaker than ``wanted``, or fail when
    AUTOGRADER_REQUIRE_SANDBOX says this machine must reach ``wanted``."""
    import pytest

    from autograder.grading.sandbox import sandbox_mode

    mode = sandbox_mode()
    if SANDBOX_MODES.index(mode) >= SANDBOX_MODES.index(wanted):
        return mode
    required = os.environ.get("AUTOGRADER_REQUIRE_SANDBOX", "none")
    if SANDBOX_MODES.index(required if required in SANDBOX_MODES else "none") >= SANDBOX_MODES.index(wanted):
        pytest.fail(f"sandbox mode {mode!r} here, but AUTOGRADER_REQUIRE_SANDBOX={required} (this test needs {wanted!r})")
    pytest.skip(f"sandbox mode {mode!r} here; this test needs {wanted!r}")


def require_cgroup() -> str:
    """'v1' or 'v2'; skip without a cgroup for workers, or fail when AUTOGRADER_REQUIRE_CGROUP=1."""
    import pytest

    from autograder.grading.sandbox import cgroup_support

    found = cgroup_support()
    if found:
        return found
    if os.environ.get("AUTOGRADER_REQUIRE_CGROUP") == "1":
        pytest.fail("no cgroup for workers here, but AUTOGRADER_REQUIRE_CGROUP=1")
    pytest.skip("no cgroup for workers on this machine (not root, or no delegated cgroup)")


def processes_named(marker: str) -> list[int]:
    """Pids of the processes whose name (``/proc/PID/comm``, set with prctl(PR_SET_NAME)) is ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as handle:
                if handle.read().strip() == marker:
                    found.append(int(pid))
        except OSError:
            pass
    return found


def descendants(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every live process below ``pid``, however deep."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
            except OSError:
                continue
            for child in children:
                start = start_time(child)
                if start and (child, start) not in found:
                    found.add((child, start))
                    todo.append(child)
    return found


def start_time(pid: int) -> str | None:
    """The start time of a live process (None when it is gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def alive(processes: set[tuple[int, str]]) -> list[int]:
    """The pids of ``processes`` (from ``descendants``) still running."""
    return [pid for pid, start in processes if start_time(pid) == start]
