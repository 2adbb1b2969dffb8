"""The class-wide CLI: gradebook, feedback without hidden tests, CSV, resumable and idempotent runs,
a kill in the middle, and the ways a submission can be missing or misnamed."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from _grading import ROOT, solved_notebook, write
from autograder import checks
from autograder.grading import cli

pytestmark = pytest.mark.slow
ASSIGNMENT = "ps02_attention"
RELEASE = os.path.join(ROOT, "exercises", ASSIGNMENT, ASSIGNMENT + ".ipynb")
FULL = sum(checks.load(ASSIGNMENT).POINTS.values())  # full marks of the assignment


class Ran:
    def __init__(self, stdout, stderr):
        self.stdout, self.stderr = stdout, stderr


def grade(*args, course, capsys, exit_code=0):
    """The CLI in this process (it starts one worker process per submission)."""
    capsys.readouterr()
    code = cli.main(["grade", "--assignment", ASSIGNMENT, "--course", str(course), "--jobs", "2", *map(str, args)])
    out = capsys.readouterr()
    assert code == exit_code, out.err[-3000:]
    return Ran(out.out, out.err)


def scores(course) -> dict[str, float]:
    with open(os.path.join(course, f"grades_{ASSIGNMENT}.csv"), newline="") as handle:
        return {row["student"]: float(row["score"]) for row in csv.DictReader(handle)}


def gradebook_scores(course) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + os.path.join(str(course), "gradebook.db")) as gb:
        return {s.student.id: s.score for s in gb.find_assignment(ASSIGNMENT).submissions}


@pytest.fixture
def submitted(tmp_path):
    """An nbgrader submitted/ tree: a perfect learner, the blank release, a renamed notebook,
    a missing notebook, and a file that is not a notebook."""
    root = tmp_path / "submitted"
    write(solved_notebook(ASSIGNMENT), root / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    (root / "alice" / ASSIGNMENT / "timestamp.txt").write_text("2026-11-25 10:00:00.000000 UTC")
    (root / "alice" / ASSIGNMENT / "submission_secret.txt").write_text("s3cr3t")
    (root / "bob" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(RELEASE, root / "bob" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    write(solved_notebook(ASSIGNMENT), root / "carol" / ASSIGNMENT / "my attention (1).ipynb")
    (root / "dave" / ASSIGNMENT).mkdir(parents=True)
    (root / "dave" / ASSIGNMENT / "notes.txt").write_text("forgot the notebook")
    (root / "erin" / ASSIGNMENT).mkdir(parents=True)
    (root / "erin" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text("{ this is not json")
    return root


def test_grades_a_submitted_tree_then_regrades_only_what_changed(submitted, tmp_path, capsys):
    course = tmp_path / "course"
    grade("--submitted", submitted, course=course, capsys=capsys)
    expected = {"alice": FULL, "bob": 0, "carol": FULL, "dave": 0, "erin": 0}
    assert scores(course) == expected
    assert gradebook_scores(course) == expected

    pages = {s: (course / "feedback" / s / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text() for s in expected}
    assert f"Score: {FULL:g} / {FULL:g}" in pages["alice"]
    assert "NotImplementedError" in pages["bob"]
    assert "should be named ps02_attention.ipynb" in pages["carol"]
    assert "no notebook found" in pages["dave"]
    assert "not a readable Jupyter notebook" in pages["erin"]
    # `nbgrader release_feedback` needs the submission's timestamp and secret beside the feedback.
    alice = course / "feedback" / "alice" / ASSIGNMENT
    assert (alice / "timestamp.txt").read_text() == "2026-11-25 10:00:00.000000 UTC"
    assert (alice / "submission_secret.txt").read_text() == "s3cr3t"
    assert not (course / "feedback" / "bob" / ASSIGNMENT / "timestamp.txt").exists()
    for page in pages.values():
        assert "<script" not in page and "http" not in page  # nothing loaded from a CDN
        assert "run_check" not in page and "_qkv" not in page and "manual_seed" not in page
        assert "def test_" not in page

    # Idempotent: nothing changed, nothing is graded or written again.
    state = course / ".autograder" / ASSIGNMENT
    before = {p: os.stat(state / p).st_mtime_ns for p in os.listdir(state)}
    out = grade("--submitted", submitted, course=course, capsys=capsys)
    assert "5 unchanged, 0 to grade" in out.stderr
    assert {p: os.stat(state / p).st_mtime_ns for p in os.listdir(state)} == before
    assert gradebook_scores(course) == expected

    # bob finishes the work and resubmits: only bob is graded again.
    shutil.copy(submitted / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", submitted / "bob" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    out = grade("--submitted", submitted, course=course, capsys=capsys)
    assert "4 unchanged, 1 to grade" in out.stderr
    assert scores(course)["bob"] == FULL and gradebook_scores(course)["bob"] == FULL
    assert json.loads((state / "bob.json").read_text())["result"]["score"] == FULL


def test_a_killed_run_leaves_consistent_files_and_the_next_run_finishes(tmp_path, capsys):
    folder = tmp_path / "handins"
    for i in range(3):
        write(solved_notebook(ASSIGNMENT), folder / f"student{i}.ipynb")
    course = tmp_path / "course"
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", "--assignment", ASSIGNMENT, "-q",
                             "--course", str(course), "--jobs", "1", str(folder)],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = course / ".autograder" / ASSIGNMENT
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if state.is_dir() and len([p for p in os.listdir(state) if p.endswith(".json")]) >= 1:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = [p for p in os.listdir(state) if p.endswith(".json")]
    assert 1 <= len(done) < 3, "the run should have been killed part-way"
    for name in done:  # no half-written state file
        json.loads((state / name).read_text())
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    out = grade(folder, course=course, capsys=capsys)
    assert f"{len(done)} unchanged, {3 - len(done)} to grade" in out.stderr
    assert scores(course) == {f"student{i}": FULL for i in range(3)}
    assert gradebook_scores(course) == {f"student{i}": FULL for i in range(3)}


def test_collect_names_students_and_refuses_duplicates(tmp_path):
    (tmp_path / "a").mkdir()
    write(solved_notebook(ASSIGNMENT), tmp_path / "a" / "zoe.ipynb")
    write(solved_notebook(ASSIGNMENT), tmp_path / "b" / "zoe" / f"{ASSIGNMENT}.ipynb")
    jobs = cli.collect(ASSIGNMENT, [str(tmp_path / "a")], None)
    assert [(j.student, os.path.basename(j.notebook)) for j in jobs] == [("zoe", "zoe.ipynb")]
    with pytest.raises(SystemExit, match="two submissions for student 'zoe'"):
        cli.collect(ASSIGNMENT, [str(tmp_path / "a"), str(tmp_path / "b")], None)
    with pytest.raises(SystemExit, match="no such file or folder"):
        cli.collect(ASSIGNMENT, [str(tmp_path / "nope")], None)


def test_unknown_assignment_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["grade", "--assignment", "ps99_nothing", str(tmp_path)])
    assert exit_info.value.code == 2 and "no checks for assignment 'ps99_nothing'" in capsys.readouterr().err


def test_a_worker_that_cannot_start_is_the_graders_fault_and_is_not_cached(tmp_path, capsys, monkeypatch):
    from autograder.grading import runner
    from autograder.protocol import Limits

    real_grade = runner.grade
    result = real_grade(ASSIGNMENT, os.path.join(ROOT, "solutions", ASSIGNMENT, f"{ASSIGNMENT}.ipynb"), Limits(boot_s=0.01))
    assert result.internal_error and result.score == 0 and "not your fault" in result.fatal
    # The CLI (through runner.grade_each) records it but keeps no cache key, so the next run grades it again.
    monkeypatch.setattr(runner, "grade", lambda a, nb, limits, mode: real_grade(a, nb, Limits(boot_s=0.01), mode))
    notebook = write(solved_notebook(ASSIGNMENT), tmp_path / "in" / "amy.ipynb")
    out = grade(notebook, course=tmp_path / "course", capsys=capsys, exit_code=1)  # 1: run again
    assert "internal errors (not the learners' fault) for amy" in out.stderr
    assert json.loads((tmp_path / "course" / ".autograder" / ASSIGNMENT / "amy.json").read_text())["key"] == ""
