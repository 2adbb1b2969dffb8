"""``grade_each``'s grading processes (issue 15): several notebooks are graded in processes, not
threads, one notebook at a time per process. A process that dies costs only the notebook it was
grading (graded again once, then an internal error, never the batch); a caller that stops early,
or a Ctrl-C, leaves no grading process, template or worker behind.
"""
from __future__ import annotations

import os

import pytest

from _grading import alive, descendants, solved_notebook, with_cells, write
from autograder import checks
from autograder.grading import runner
from autograder.protocol import Limits

pytestmark = pytest.mark.slow
ASSIGNMENT = "ps02_attention"
FULL = sum(checks.load(ASSIGNMENT).POINTS.values())

# A grading process whose grade() kills its own process on the notebooks named so: always, or on the
# first try only (a file beside the notebook remembers the try).
DYING_BOOT = """import json, os, sys
boot = json.loads(sys.stdin.readline())
sys.path[:] = boot["path"]
from autograder.grading import runner
real = runner.grade

def grade(assignment, notebook, *args):
    tried = notebook + ".tried"
    if "dies_always" in notebook or ("dies_once" in notebook and not os.path.exists(tried)):
        open(tried, "w").close()
        os.kill(os.getpid(), 9)
    return real(assignment, notebook, *args)

runner.grade = grade
runner.serve_tasks(boot)
"""


def notebooks(tmp_path, *names: str, loop: bool = False) -> dict[str, str]:
    nb = lambda: with_cells(solved_notebook(ASSIGNMENT), append=["while True:\n    pass"] if loop else [])  # noqa: E731
    return {name: write(nb(), tmp_path / name / f"{ASSIGNMENT}.ipynb") for name in names}


def grading_processes() -> set[tuple[int, str]]:
    """This process's grading processes (and everything below them)."""
    found = set()
    for pid, start in descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if b"serve_tasks" in handle.read():
                    found |= {(pid, start)} | descendants(pid)
        except OSError:
            pass
    return found


def test_a_grading_process_that_dies_costs_only_its_notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "POOL_BOOT", DYING_BOOT)
    paths = notebooks(tmp_path, "honest", "dies_once", "dies_always", "honest_too")
    results = dict(runner.grade_each(ASSIGNMENT, paths, jobs=2))
    assert sorted(results) == sorted(paths)
    for name in ("honest", "dies_once", "honest_too"):  # dies_once: graded again in a fresh process
        assert results[name].score == FULL and not results[name].internal_error, (name, results[name].fatal)
    dead = results["dies_always"]
    assert dead.internal_error and dead.score == 0 and "not your fault" in dead.fatal
    assert "died 2 times" in dead.output
    assert not grading_processes()


@pytest.mark.parametrize("how", ["caller stops", "Ctrl-C"])
def test_nothing_outlives_a_batch_stopped_early(tmp_path, how):
    """The first result arrives while the other grading process is busy with a notebook that loops:
    stopping there (the caller closes the iterator, or a Ctrl-C reaches it) stops every grading
    process, and with them their templates and workers."""
    paths = {**notebooks(tmp_path, "honest"), **notebooks(tmp_path, "loops", "loops_too", loop=True)}
    batch = runner.grade_each(ASSIGNMENT, paths, jobs=2, limits=Limits(startup_s=120, call_s=8, cpu_s=300))
    name, result = next(batch)
    assert name == "honest" and result.score == FULL
    tree = grading_processes()
    assert len(tree) >= 5, tree  # two grading processes, two templates, the looping worker's keeper, init and learner
    if how == "Ctrl-C":
        with pytest.raises(KeyboardInterrupt):
            batch.throw(KeyboardInterrupt)
    else:
        batch.close()
    assert not alive(tree), alive(tree)
