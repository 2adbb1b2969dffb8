"""Grading a large class (issue 15): the same class graded by this machine's pool (``--jobs 2``), as
two shards of a Slurm job array joined by ``merge``, and on a Dask cluster gives one CSV, byte for
byte. On the way: no process of a hostile submission survives any of them, learner code cannot reach
the Dask scheduler, a Dask worker killed mid-run loses nothing and records each student once, a node
with other checks stops the run (exit 2, not a learner's 0), and ``merge`` refuses results graded
with other checks or two different results for one student.

One ``distributed.LocalCluster`` of two single-threaded worker processes serves the module.
"""
from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from _grading import ROOT, detaching_cell, processes_named, require_sandbox, solved_notebook, with_cells, write
from autograder import checks
from autograder.grading import cli, collect, remote, sandbox
from autograder.grading.cache import checks_fingerprint

pytestmark = pytest.mark.slow
ASSIGNMENT = "ps02_attention"
NB = ASSIGNMENT + ".ipynb"
FULL = sum(checks.load(ASSIGNMENT).POINTS.values())
RELEASE = os.path.join(ROOT, "exercises", ASSIGNMENT, NB)
SOLUTION = os.path.join(ROOT, "solutions", ASSIGNMENT, NB)
SLURM = os.path.join(ROOT, "autograder", "examples", "slurm_grade.sh")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SCHEDULER_PORT = _free_port()  # chosen here, so that the class can be written before the cluster starts
MARKER = f"agscale{random.randrange(16 ** 6):06x}"  # /proc/PID/comm of the process the detacher leaves
# Leaves a looping process of its own session behind, then tries to reach the Dask scheduler (the
# cell's error, which the feedback lists, says how that went).
HOSTILE = f"""
import ctypes, os, socket, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(15, b"{MARKER}", 0, 0, 0)  # PR_SET_NAME
        while True:
            time.sleep(0.05)
    os._exit(0)
try:
    socket.create_connection(("127.0.0.1", {SCHEDULER_PORT}), timeout=5).close()
    outcome = "connected"
except OSError as exc:
    outcome = f"unreachable ({{type(exc).__name__}}: {{exc}})"
raise RuntimeError(f"scheduler probe: {{outcome}}")
"""
EXPECTED = {"honest": FULL, "blank": 0, "not_json": 0, "linked": 0, "hostile": FULL}


def scores(course) -> dict[str, float]:
    with open(os.path.join(course, f"grades_{ASSIGNMENT}.csv"), newline="") as handle:
        return {row["student"]: float(row["score"]) for row in csv.DictReader(handle)}


def csv_bytes(course) -> bytes:
    with open(os.path.join(course, f"grades_{ASSIGNMENT}.csv"), "rb") as handle:
        return handle.read()


def entry(course, student) -> dict:
    with open(os.path.join(course, ".autograder", ASSIGNMENT, student + ".json")) as handle:
        return json.load(handle)


def grade(*args, course, capsys=None, exit_code=0) -> str:
    """The CLI in this process; returns its stderr."""
    if capsys:
        capsys.readouterr()
    code = cli.main(["grade", "--assignment", ASSIGNMENT, "--course", str(course), *map(str, args)])
    err = capsys.readouterr().err if capsys else ""
    assert code == exit_code, err[-3000:]
    return err


def wait_for(condition, seconds: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """An nbgrader submitted/ tree: full marks, the blank release, a notebook that is not JSON, a
    link to the solution, and a notebook that leaves a looping process behind and tries to reach
    the Dask scheduler."""
    root = tmp_path_factory.mktemp("scale") / "submitted"
    write(solved_notebook(ASSIGNMENT), root / "honest" / ASSIGNMENT / NB)
    (root / "honest" / ASSIGNMENT / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
    (root / "blank" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(RELEASE, root / "blank" / ASSIGNMENT / NB)
    (root / "not_json" / ASSIGNMENT).mkdir(parents=True)
    (root / "not_json" / ASSIGNMENT / NB).write_text("{ not json")
    (root / "linked" / ASSIGNMENT).mkdir(parents=True)
    os.symlink(SOLUTION, root / "linked" / ASSIGNMENT / NB)
    write(with_cells(solved_notebook(ASSIGNMENT), append=[HOSTILE]), root / "hostile" / ASSIGNMENT / NB)
    return root


@pytest.fixture(scope="module")
def baseline(klass, tmp_path_factory):
    """The class graded once, unsharded, by this machine's pool of two workers."""
    require_sandbox("user")
    course = tmp_path_factory.mktemp("baseline")
    grade("--submitted", klass, "--jobs", "2", "-q", course=course)
    return course


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    import logging

    local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, scheduler_port=SCHEDULER_PORT,
                                     dashboard_address=":0", memory_limit=0, silence_logs=logging.ERROR)
    client = distributed.Client(local)
    yield local, client
    client.close()
    local.close()


# ------------------------------------------------------------------- one machine, --jobs 2
def test_the_pool_grades_the_class_and_no_process_of_a_submission_survives(baseline):
    assert scores(baseline) == EXPECTED
    assert wait_for(lambda: not processes_named(MARKER), 10), f"survivors: {processes_named(MARKER)}"
    saved = entry(baseline, "honest")
    assert saved["fingerprint"] == checks_fingerprint(ASSIGNMENT) and saved["student"] == "honest"
    assert saved["exchange"] == {"timestamp.txt": "2026-12-01 10:00:00.000000 UTC"}


# ------------------------------------------------------------------- shards and merge
def test_shards_are_stable_cover_the_class_and_are_checked(capsys):
    students = [f"student{i}" for i in range(200)]
    counts = [0, 0, 0, 0]
    for student in students:
        counts[collect.shard_of(student, 4)] += 1
    assert sum(counts) == 200 and min(counts) > 30, counts
    # sha256 of the id, not Python's salted hash(): the same on every node and in every run
    assert [collect.shard_of(s, 4) for s in ("alice", "bob", "carol")] == [
        int.from_bytes(__import__("hashlib").sha256(s.encode()).digest()[:8], "big") % 4 for s in ("alice", "bob", "carol")]
    assert collect.parse_shard("0/4") == (0, 4) and collect.parse_shard("3/4") == (3, 4)
    for wrong in ("4/4", "-1/4", "1", "a/b", "0/0", "1/4/2"):
        with pytest.raises(SystemExit) as refused:
            cli.main(["grade", "--assignment", ASSIGNMENT, f"--shard={wrong}", ROOT])
        assert refused.value.code == 2
        assert "give K/N with 0 <= K < N" in capsys.readouterr().err


def _split(baseline, tmp_path, shards=2) -> list[str]:
    """The baseline's results, moved into one course folder per shard (as the shards would write them)."""
    folders = []
    for k in range(shards):
        folder = tmp_path / f"shard-{k}" / ".autograder" / ASSIGNMENT
        folder.mkdir(parents=True)
        folders.append(str(tmp_path / f"shard-{k}"))
    for name in os.listdir(os.path.join(baseline, ".autograder", ASSIGNMENT)):
        k = collect.shard_of(name[:-len(".json")], shards)
        shutil.copy(os.path.join(baseline, ".autograder", ASSIGNMENT, name), folders[k] + f"/.autograder/{ASSIGNMENT}/")
    return folders


def test_merge_joins_the_results_without_grading(baseline, tmp_path, capsys, monkeypatch):
    from autograder.grading import runner

    monkeypatch.setattr(runner, "grade", lambda *a, **k: pytest.fail("merge must not grade"))
    folders = _split(baseline, tmp_path)
    capsys.readouterr()
    assert cli.main(["merge", *folders, "--course", str(tmp_path / "joined")]) == 0
    assert csv_bytes(tmp_path / "joined") == csv_bytes(baseline)
    feedback = tmp_path / "joined" / "feedback" / "honest" / ASSIGNMENT
    assert f"Score: {FULL:g} / {FULL:g}" in (feedback / NB.replace(".ipynb", ".html")).read_text()
    assert (feedback / "timestamp.txt").read_text() == "2026-12-01 10:00:00.000000 UTC"
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(tmp_path / "joined" / "gradebook.db")) as gb:
        assert {s.student.id: s.score for s in gb.find_assignment(ASSIGNMENT).submissions} == EXPECTED
    # The same folder twice, or the merged folder itself, holds the same grades: kept once.
    assert cli.main(["merge", *folders, folders[0], str(tmp_path / "joined"), "--course", str(tmp_path / "joined")]) == 0
    assert csv_bytes(tmp_path / "joined") == csv_bytes(baseline)


def test_merge_refuses_other_checks_two_results_and_a_missing_shard(baseline, tmp_path, capsys):
    def refused(*folders) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as stopped:
            cli.main(["merge", *map(str, folders), "--course", str(tmp_path / "out")])
        assert stopped.value.code == 2
        return capsys.readouterr().err

    folders = _split(baseline, tmp_path / "a")
    other = _split(baseline, tmp_path / "b")
    state = os.path.join(other[0], ".autograder", ASSIGNMENT)
    path = os.path.join(state, sorted(os.listdir(state))[0])
    with open(path) as handle:
        data = json.load(handle)
    data["fingerprint"] = "0" * 64
    with open(path, "w") as handle:
        json.dump(data, handle)
    assert "was graded with other checks" in refused(other[0], other[1])

    data["fingerprint"] = checks_fingerprint(ASSIGNMENT)
    data["result"]["tests"][0]["points"] = 0.5  # another grade of the same student
    data["key"] = "f" * 64
    with open(path, "w") as handle:
        json.dump(data, handle)
    assert f"two different results for student {data['student']!r}" in refused(*folders, other[0])
    assert "no such folder" in refused(folders[0], tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert "did its shard run?" in refused(folders[0], tmp_path / "empty")
    assert not (tmp_path / "out" / "gradebook.db").exists(), "a refused merge must write nothing"


def test_a_slurm_job_array_dry_run_equals_one_run(klass, baseline, tmp_path):
    """autograder/examples/slurm_grade.sh, run as Slurm would run it: each array index, then the merge."""
    env = dict(os.environ, SHARDS="2", SUBMITTED=str(klass), RESULTS=str(tmp_path / "results"),
               COURSE=str(tmp_path / "course"), PYTHON=sys.executable, SLURM_CPUS_PER_TASK="1", SLURM_SUBMIT_DIR=ROOT)
    tasks = [subprocess.Popen(["bash", SLURM], env=dict(env, SLURM_ARRAY_TASK_ID=str(k), SLURM_ARRAY_TASK_COUNT="2"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(2)]  # at once, as Slurm runs them
    for k, task in enumerate(tasks):
        _, err = task.communicate(timeout=600)
        assert task.returncode == 0, err[-3000:]
        assert (tmp_path / "results" / f"shard-{k}" / f"grades_{ASSIGNMENT}.csv").is_file()
    merged = subprocess.run(["bash", SLURM], env=env, capture_output=True, text=True, timeout=600)
    assert merged.returncode == 0, merged.stderr[-3000:]
    assert csv_bytes(tmp_path / "course") == csv_bytes(baseline)
    assert wait_for(lambda: not processes_named(MARKER), 10), f"survivors: {processes_named(MARKER)}"


def test_the_kubernetes_examples_are_an_indexed_job_and_its_merge():
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(ROOT, "autograder", "examples", "k8s_indexed_job.yaml")) as handle:
        (job,) = list(yaml.safe_load_all(handle))
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    assert pod["hostUsers"] is False and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["securityContext"]["procMount"] == "Unmasked"
    script = " ".join(container["args"])
    assert f'--shard "$JOB_COMPLETION_INDEX/{spec["completions"]}"' in script and 'sys.exit(m == "none")' in script
    with open(os.path.join(ROOT, "autograder", "examples", "k8s_merge_job.yaml")) as handle:
        (merge,) = list(yaml.safe_load_all(handle))
    command = merge["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:4] == [".venv/bin/python", "-m", "autograder", "merge"]
    shards = [f"/class/results/shard-{k}" for k in range(spec["completions"])]
    assert [c for c in command if "/results/shard-" in c] == shards


# ------------------------------------------------------------------- Dask
def test_dask_grades_the_class_as_the_pool_does_and_learners_cannot_reach_the_scheduler(cluster, klass, baseline, tmp_path):
    local, client = cluster
    assert local.scheduler_address == f"tcp://127.0.0.1:{SCHEDULER_PORT}"
    socket.create_connection(("127.0.0.1", SCHEDULER_PORT), timeout=5).close()  # reachable from here, the trusted side
    course = tmp_path / "dask"
    grade("--submitted", klass, "--dask", local.scheduler_address, "-q", course=course)
    assert csv_bytes(course) == csv_bytes(baseline)
    assert wait_for(lambda: not processes_named(MARKER), 10), f"survivors: {processes_named(MARKER)}"
    for where in (baseline, course):
        errors = [e["error"] for e in entry(where, "hostile")["result"]["notebook_errors"]]
        assert any("scheduler probe: unreachable" in e for e in errors), errors
        assert not any("connected" in e and "unreachable" not in e for e in errors), errors
    assert entry(course, "honest")["result"]["notebook"] == str(klass / "honest" / ASSIGNMENT / NB)


def test_a_node_with_other_checks_stops_the_run(cluster, tmp_path, capsys, monkeypatch):
    local, _ = cluster
    write(solved_notebook(ASSIGNMENT), tmp_path / "in" / "amy.ipynb")
    (tmp_path / "in" / "bo").mkdir()  # no notebook: graded here, nothing to send
    monkeypatch.setattr(cli, "checks_fingerprint", lambda assignment, module=None: "0" * 64)
    err = grade(tmp_path / "in", "--dask", local.scheduler_address, "-q", course=tmp_path / "c", capsys=capsys, exit_code=2)
    assert "has other checks than the coordinator" in err and "install the same checkout" in err
    assert scores(tmp_path / "c") == {"bo": 0}  # what was graded is saved, amy was not graded


def test_a_grading_node_without_a_sandbox_refuses(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sandbox, "sandbox_mode", lambda: "none")
    task = remote.task_for(ASSIGNMENT, checks_fingerprint(ASSIGNMENT), None, collect.read_submission(RELEASE))
    with pytest.raises(remote.GradingNodeError, match="has no sandbox"):
        remote.grade_task(task)
    # --dask local:N on such a machine: a usage error before any cluster starts
    write(solved_notebook(ASSIGNMENT), tmp_path / "in" / "amy.ipynb")
    pytest.importorskip("distributed")
    with pytest.raises(SystemExit) as refused:
        cli.main(["grade", "--assignment", ASSIGNMENT, str(tmp_path / "in"), "--course", str(tmp_path / "c"),
                  "--dask", "local:2"])
    assert refused.value.code == 2 and "no network namespace (mode none)" in capsys.readouterr().err


def test_what_travels_to_a_node_grades_as_the_file_itself(tmp_path):
    """The coordinator reads a notebook once (no link, at most 20 MB) and sends plain data; a node
    rebuilds it in a private folder under its own name: same result, same message, no worker needed."""
    from autograder.grading import runner
    from autograder.grading.submission import MAX_NOTEBOOK_BYTES

    require_sandbox("user")
    (tmp_path / "broken.ipynb").write_text("{ not json")
    with open(tmp_path / "huge.ipynb", "wb") as handle:
        handle.truncate(MAX_NOTEBOOK_BYTES + (3 << 20))
    os.symlink(SOLUTION, tmp_path / "linked.ipynb")
    fingerprint = checks_fingerprint(ASSIGNMENT)
    for name in ("broken.ipynb", "huge.ipynb", "linked.ipynb", "gone.ipynb"):
        path = str(tmp_path / name)
        payload = collect.read_submission(path)
        assert "data" not in payload or len(payload["data"]) <= MAX_NOTEBOOK_BYTES
        here = runner.grade(ASSIGNMENT, path)
        there = runner.GradeResult.from_dict(remote.grade_task(remote.task_for(ASSIGNMENT, fingerprint, None, payload)))
        assert there.score == here.score == 0 and there.fatal == here.fatal, (name, here.fatal, there.fatal)
        assert [t.message for t in there.tests] == [t.message for t in here.tests]


def _ancestor_in(pid: int, candidates: set[int]) -> int | None:
    while pid > 1:
        if pid in candidates:
            return pid
        try:
            with open(f"/proc/{pid}/status") as handle:
                pid = int(next(line for line in handle if line.startswith("PPid:")).split()[1])
        except (OSError, StopIteration, ValueError):
            return None
    return None


def test_a_dask_worker_killed_mid_run_loses_nothing(cluster, tmp_path, monkeypatch):
    """SIGKILL the Dask worker that runs a notebook (a detached looping grandchild, a main that sleeps):
    the tree dies with it, Dask grades the notebook again elsewhere, each student is recorded once."""
    require_sandbox("user")
    local, client = cluster
    marker = f"agkilled{random.randrange(16 ** 6):06x}"
    sleeper = detaching_cell(marker, main_loops=False) + "time.sleep(3)\n"  # the main sleeps, then ends
    handins = tmp_path / "handins"
    write(solved_notebook(ASSIGNMENT), handins / "ann.ipynb")
    write(with_cells(solved_notebook(ASSIGNMENT), append=[sleeper]), handins / "sleeper.ipynb")
    shutil.copy(RELEASE, handins / "blank.ipynb")
    workers = set(client.run(os.getpid).values())
    killed = []

    def kill_the_sleepers_worker():
        def found():
            for pid in processes_named(marker):
                worker = _ancestor_in(pid, workers)
                if worker:
                    killed.append(worker)
                    os.kill(worker, signal.SIGKILL)
                    return True
            return False
        wait_for(found, 240, 0.05)

    from autograder.grading.gradebook import GradebookWriter

    recorded: dict[str, int] = {}
    real_record = GradebookWriter.record

    def record(self, student, result, lateness=None):
        recorded[student] = recorded.get(student, 0) + 1
        return real_record(self, student, result, lateness)

    monkeypatch.setattr(GradebookWriter, "record", record)
    killer = threading.Thread(target=kill_the_sleepers_worker, daemon=True)
    killer.start()
    grade(handins, "--dask", local.scheduler_address, "-q", course=tmp_path / "c")
    killer.join(5)
    assert killed, "the sleeper never ran on a Dask worker"
    assert wait_for(lambda: not os.path.exists(f"/proc/{killed[0]}"), 10), "the killed worker is still there"
    assert scores(tmp_path / "c") == {"ann": FULL, "sleeper": FULL, "blank": 0}
    assert recorded == {"ann": 1, "sleeper": 1, "blank": 1}
    assert wait_for(lambda: not processes_named(marker), 15), f"survivors: {processes_named(marker)}"
    wait_for(lambda: len(client.nthreads()) == 2, 60)  # the nanny restarts the worker for the next test


def test_the_grader_runs_without_dask_installed(tmp_path):
    """Dask is an optional extra: without it, everything but --dask works, and --dask says what to install."""
    (tmp_path / "in" / "amy").mkdir(parents=True)  # no notebook: graded without a worker
    probe = f"""
import sys
sys.modules["dask"] = sys.modules["distributed"] = None  # import dask -> ImportError
from autograder.grading import cli
assert cli.main(["grade", "--assignment", "{ASSIGNMENT}", "-q", "--course", sys.argv[1] + "/c", sys.argv[1] + "/in"]) == 0
try:
    cli.main(["grade", "--assignment", "{ASSIGNMENT}", "--dask", "local:2", "--course", sys.argv[1] + "/d",
              sys.argv[1] + "/in"])
except SystemExit as exc:
    assert exc.code == 2
    print("refused")
"""
    ran = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and "refused" in ran.stdout, ran.stderr[-3000:]
    assert "pip install 'attention-course[dask]'" in ran.stderr
