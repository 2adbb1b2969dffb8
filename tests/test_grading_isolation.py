"""The sandbox against a learner who attacks the grader itself (issue 13, findings 5-11 and 14).

Each attack is a notebook of our own. Whole-run attacks (a hang, survivors, the grader killed with
-9) are graded in the same run as an honest twin whose grade must be unaffected.
On a machine that supports a mode, `.ci/run` makes the tests that need it fail instead of skip
(AUTOGRADER_REQUIRE_SANDBOX, AUTOGRADER_REQUIRE_CGROUP; see tests/_grading.py).
"""
from __future__ import annotations

import ctypes
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import tracemalloc

import pytest
import torch

from _grading import (ROOT, SANDBOX_MODES, alive, descendants, detaching_cell, processes_named, require_cgroup,
                      require_sandbox, solved_notebook, with_cells, write)
from autograder import checks, protocol
from autograder.grading import sandbox, worker
from autograder.grading.runner import grade, grade_each
from autograder.grading.sandbox import Cgroup, Worker, cgroup_support, mode_guarantees, sandbox_mode
from autograder.grading.submission import Submission
from autograder.protocol import Limits, StudentError

FAST = Limits(startup_s=30, call_s=8, cpu_s=120)


def test_this_machine_reaches_the_sandbox_it_must():
    """`.ci/run` names the mode this machine supports: reaching less is a failure, not a skip."""
    required = os.environ.get("AUTOGRADER_REQUIRE_SANDBOX")
    if required:
        assert required in SANDBOX_MODES, required
        assert SANDBOX_MODES.index(sandbox_mode()) >= SANDBOX_MODES.index(required), (sandbox_mode(), required)
    if os.environ.get("AUTOGRADER_REQUIRE_CGROUP") == "1":
        assert cgroup_support(), "no cgroup for workers here"


def test_each_mode_states_what_it_guarantees():
    """The CLI's one-line notice (sandbox.mode_guarantees): plain about what is and is not held."""
    root, user, none = (mode_guarantees(m) for m in ("root", "user", "none"))
    assert "no network" in root and "unprivileged uid" in root and "pid namespace" in root
    assert "user namespace" in user and "RLIMIT_NPROC" in user
    assert none.startswith("sandbox none: NO isolation") and "world-readable" in none
    for line in (root, user, none):
        assert "\n" not in line
        assert ("cgroup" in line) if cgroup_support() else ("no cgroup" in line or "RLIMIT_AS" in line or "none" in line)


# ----------------------------------------------------------------------------- 5. hangs
STOP_READING = """
import fcntl, os, sys, time

def stop_reading():
    \"\"\"Shrink the request pipe to one page and never read it again.\"\"\"
    shrunk = []
    for fd in range(3, 256):
        try:
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 4096)
                shrunk.append(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
        except OSError:
            pass
    sys.modules["protocol"].read_message = lambda *a, **k: time.sleep(10 ** 6)
    return shrunk

def echo(x):
    return x
"""


def _in_thread(target, limit_s: float):
    """Run ``target`` in a daemon thread; (finished, value or exception, seconds)."""
    box = {}

    def run():
        try:
            box["value"] = target()
        except BaseException as exc:  # noqa: BLE001
            box["value"] = exc

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit_s)
    return not thread.is_alive(), box.get("value"), time.monotonic() - start


@pytest.mark.slow
def test_a_worker_that_stops_reading_is_killed_at_the_calls_deadline():
    """The learner shrinks its request pipe (F_SETPIPE_SZ) and stops reading; a request bigger than the
    pipe then waits for room: the write has the call's deadline, the worker is killed."""
    sub = Submission([{"index": 1, "source": STOP_READING}], FAST)

    def attack():
        with sub:
            shrunk = sub.call("stop_reading")
            try:
                sub.call("echo", torch.zeros(300_000))  # 1.2 MB
            except StudentError as exc:
                return shrunk, exc
            return shrunk, None

    finished, value, seconds = _in_thread(attack, 120)
    assert finished, "the grader hung writing to a worker that stopped reading"
    shrunk, exc = value
    assert shrunk and set(shrunk) == {4096}, shrunk
    assert isinstance(exc, StudentError) and exc.kind == protocol.TIMEOUT, exc
    assert "stopped reading" in str(exc)
    assert seconds < 60, seconds


STOPS_READING_MHA = """
_Honest = MultiHeadAttention

class MultiHeadAttention(_Honest):
    def eval(self):
        stop_reading()  # the check's next request, load_state_dict of (16, 16) weights, is bigger than one page
        return super().eval()
"""


@pytest.mark.slow
def test_a_batch_finishes_when_one_worker_stops_reading(tmp_path):
    """The same attack in a whole run (ps04: the check loads the reference weights into the learner's
    module): the batch finishes, the honest twin keeps full marks."""
    honest = write(solved_notebook("ps04_multihead"), tmp_path / "honest" / "ps04_multihead.ipynb")
    hostile = write(with_cells(solved_notebook("ps04_multihead"), append=[STOP_READING, STOPS_READING_MHA]),
                    tmp_path / "mallory" / "ps04_multihead.ipynb")
    finished, results, _ = _in_thread(
        lambda: dict(grade_each("ps04_multihead", {"honest": honest, "mallory": hostile}, jobs=2,
                                limits=Limits(startup_s=60, call_s=8, cpu_s=300))), 600)
    assert finished, "the batch hung"
    assert not isinstance(results, BaseException), results
    assert results["honest"].score == results["honest"].max_score, [(t.name, t.message) for t in results["honest"].tests]
    mallory = results["mallory"]
    assert mallory.score < mallory.max_score and not mallory.internal_error
    assert any("stopped reading" in t.message for t in mallory.tests), [t.message for t in mallory.tests]


# ----------------------------------------------------------------------------- 6. survivors
def _leftover_cgroups(owner: int) -> list[str]:
    found = Cgroup.parents() if cgroup_support() else None
    if not found:
        return []
    return [name for parent in found[1] if os.path.isdir(parent)
            for name in os.listdir(parent) if name.split("-")[2:3] == [str(owner)]]


@pytest.mark.slow
def test_a_detached_looping_child_dies_with_its_worker():
    require_sandbox("user")
    marker = f"agiso{random.randrange(16 ** 8):08x}"
    with Submission([{"index": 1, "source": detaching_cell(marker, False) + "\ndef f():\n    return 1\n"}], FAST) as sub:
        assert sub.call("f") == 1
        assert len(processes_named(marker)) == 2, "the detached grandchild should be running now"
    assert not processes_named(marker)
    assert not _leftover_cgroups(os.getpid())


def _wait_for(condition, seconds: float, step: float = 0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@pytest.mark.slow
@pytest.mark.parametrize("mode, cgroups", [("root", True), ("user", False)], ids=["root+cgroup", "user-no-cgroup"])
def test_no_worker_survives_the_grader_killed_with_sigkill(tmp_path, mode, cgroups):
    """Kill the grader with -9 while a learner's notebook loops with a detached grandchild: nothing of
    the worker remains (without a cgroup too: by the pid namespace alone). The next run cleans the
    dead grader's cgroups and grades the honest twin as if nothing happened."""
    require_sandbox(mode)
    marker = f"agkill{random.randrange(16 ** 8):08x}"
    submitted = tmp_path / "handins"
    write(solved_notebook("ps02_attention"), submitted / "honest" / "ps02_attention.ipynb")
    write(with_cells(solved_notebook("ps02_attention"), append=[detaching_cell(marker, True)]),
          submitted / "mallory" / "ps02_attention.ipynb")
    env = dict(os.environ, AUTOGRADER_SANDBOX=mode, AUTOGRADER_CGROUP="1" if cgroups else "0")
    command = [sys.executable, "-m", "autograder", "grade", "--assignment", "ps02_attention", str(submitted),
               "--course", str(tmp_path / "course"), "--jobs", "2", "-q"]
    grader = subprocess.Popen(command + ["--timeout", "300"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: len(processes_named(marker)) >= 2, 240), "the hostile notebook never started"
        # Its grading processes, their templates, the workers' keepers, inits and learners.
        tree = descendants(grader.pid)
        assert len(tree) >= 8, tree
    finally:
        grader.kill()  # SIGKILL: no cleanup code of the grader runs
        grader.wait()
    assert _wait_for(lambda: not processes_named(marker), 15), f"survivors: {processes_named(marker)}"
    assert _wait_for(lambda: not alive(tree), 15), f"survivors of the grader's tree: {alive(tree)}"

    again = subprocess.Popen(command + ["--timeout", "6"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    _, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr[-3000:]
    with open(tmp_path / "course" / "grades_ps02_attention.csv") as handle:
        scores = {line.split(",")[0]: line.split(",")[1] for line in handle.read().splitlines()[1:]}
    full = sum(checks.load("ps02_attention").POINTS.values())
    assert scores == {"honest": f"{full:g}", "mallory": "0"}, scores
    assert not processes_named(marker)
    # Cgroups are named after the process that made them: the grader or one of its grading processes.
    owners = [grader.pid] + [pid for pid, _ in tree]
    assert not [g for pid in owners for g in _leftover_cgroups(pid)], "the cgroups of the grader killed with -9 were not removed"
    assert not _leftover_cgroups(again.pid), "the run after it left cgroups behind"



# ----------------------------------------------------------------------------- 7. memory over the tree
HOLD = """
import os, select, signal, time

def hold(children, megabytes):
    \"\"\"Fork children that each allocate and touch ``megabytes``; how many hold it at once.\"\"\"
    r, w = os.pipe()
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            block = b"\\x01" * (megabytes << 20)
            os.write(w, b"x")
            time.sleep(60)
            os._exit(0)
        pids.append(pid)
    got, alive, deadline = 0, set(pids), time.monotonic() + 20
    while got + (children - len(alive)) < children and time.monotonic() < deadline:
        if select.select([r], [], [], 0.1)[0]:
            got += len(os.read(r, 64))
        for pid in list(alive):
            if os.waitpid(pid, os.WNOHANG)[0]:
                alive.discard(pid)
    time.sleep(0.5)
    holding = [pid for pid in alive if os.waitpid(pid, os.WNOHANG)[0] == 0]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
    return len(holding)
"""


@pytest.mark.slow
def test_memory_is_limited_over_the_whole_tree(monkeypatch):
    """Four children of 256 MB each under a 1 GB limit: RLIMIT_AS (per process) lets all four hold
    theirs; the worker's cgroup does not."""
    require_cgroup()
    limits = Limits(startup_s=30, call_s=40, memory_mb=1024, cpu_s=120)
    with Worker([{"index": 1, "source": HOLD}], limits) as w:
        holding = w.call("hold", 4, 256)
        memory = w.cgroup.dirs[1] if w.cgroup.version == 1 else w.cgroup.dirs[0]
        peak_file = "memory.max_usage_in_bytes" if w.cgroup.version == 1 else "memory.peak"
        with open(os.path.join(memory, peak_file)) as handle:
            peak = int(handle.read())
    assert holding < 4, holding
    assert peak <= 1024 << 20, peak
    monkeypatch.setattr(sandbox, "cgroup_support", lambda: None)  # the same without a cgroup: the finding
    with Worker([{"index": 1, "source": HOLD}], limits) as w:
        assert w.cgroup is None
        assert w.call("hold", 4, 256) == 4


# ----------------------------------------------------------------------------- 8, 11, 14. inside the worker
PROBE = r"""
import os, sys
# First, before this cell imports anything: what the worker inherited from its template.
modules = sorted(sys.modules)
descriptors = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        descriptors[fd] = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # the one os.listdir used, closed again
        pass

import ctypes, errno, fcntl, gc, threading
import torch

libc = ctypes.CDLL(None, use_errno=True)
NR = {"x86_64": dict(unshare=272, clone=56, clone3=435, mount=165, bpf=321, io_uring_setup=425, keyctl=250,
                     ptrace=101, setns=308, userfaultfd=323, perf_event_open=298),
      "aarch64": dict(unshare=97, clone=220, clone3=435, mount=40, bpf=280, io_uring_setup=425, keyctl=219,
                      ptrace=117, setns=268, userfaultfd=282, perf_event_open=241)}[os.uname().machine]

def attempt(name, *args):
    ctypes.set_errno(0)
    result = libc.syscall(NR[name], *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    if result == 0 and name == "clone":
        os._exit(0)  # the child of a clone that was allowed
    return errno.errorcode.get(ctypes.get_errno(), "?") if result == -1 else "allowed"

params = ctypes.create_string_buffer(256)
syscalls = {
    "unshare(CLONE_NEWUSER)": attempt("unshare", 0x10000000),
    "unshare(CLONE_NEWNET)": attempt("unshare", 0x40000000),
    "clone(CLONE_NEWUSER)": attempt("clone", 0x10000000 | 17, 0, 0, 0, 0),
    "clone3": attempt("clone3", 0, 0),
    "mount": attempt("mount", ctypes.c_char_p(b"none"), ctypes.c_char_p(b"/tmp"), ctypes.c_char_p(b"tmpfs"), 0, 0),
    "bpf": attempt("bpf", 0, 0, 0),
    "io_uring_setup": attempt("io_uring_setup", 4, params),
    "keyctl": attempt("keyctl", 0, -3, 0),
    "ptrace(PTRACE_TRACEME)": attempt("ptrace", 0, 0, 0, 0),
    "setns": attempt("setns", 0, 0),
    "userfaultfd": attempt("userfaultfd", 0),
    "perf_event_open": attempt("perf_event_open", params, 0, -1, -1, 0),
}
# What a notebook does need still works: threads, fork, torch with threads.
done = []
thread = threading.Thread(target=lambda: done.append(1))
thread.start(); thread.join()
child = os.fork()
if child == 0:
    os._exit(7)
forked = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
torch.set_num_threads(2)
works = bool(done) and forked == 7 and torch.allclose(torch.ones(64, 64) @ torch.ones(64, 64), torch.full((64, 64), 64.0))

def read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError as exc:
        return type(exc).__name__

cmdlines = {p: read(f"/proc/{p}/cmdline") for p in os.listdir("/proc") if p.isdigit()}
environ = read("/proc/self/environ")
configs = [sorted(o) for o in gc.get_objects() if isinstance(o, dict) and "sandbox" in o and "wfd" in o]
config_values = [repr(o) for o in gc.get_objects() if isinstance(o, dict) and "sandbox" in o and "wfd" in o]
own_cgroup = read("/proc/self/cgroup")

course = {}
for folder in [p for p in sys.path if p.endswith("site-packages")]:
    for entry in os.listdir(folder):
        if "attention_course" in entry or entry in ("attnlab", "autograder", "attnlab.py"):
            path = os.path.join(folder, entry)
            course[path] = sorted(os.listdir(path)) if os.path.isdir(path) else read(path)
imports = {}
for name in ("attnlab", "autograder", "autograder.checks"):
    try:
        __import__(name)
        imports[name] = "imported"
    except ImportError as exc:
        imports[name] = type(exc).__name__
"""


@pytest.fixture(scope="module", params=["root", "user"])
def probe(request):
    require_sandbox(request.param)
    with Submission([{"index": 1, "source": PROBE}], FAST, mode=request.param) as sub:
        sub._worker()
        assert not sub.cell_errors, sub.cell_errors
        yield request.param, {name: sub.get(name) for name in
                              ("syscalls", "works", "cmdlines", "environ", "configs", "config_values", "course", "imports",
                               "modules", "descriptors")}


@pytest.mark.slow
def test_seccomp_denies_what_a_notebook_never_needs(probe):
    mode, found = probe
    if not sandbox.seccomp_enabled(mode):
        pytest.skip(f"no seccomp filter for {os.uname().machine}")
    syscalls = found["syscalls"]
    assert syscalls.pop("clone3") == "ENOSYS"  # so that the C library falls back to clone, whose flags are checked
    assert set(syscalls.values()) == {"EPERM"}, syscalls
    assert found["works"] is True


@pytest.mark.slow
def test_nothing_about_the_host_reaches_the_worker(probe):
    """No configuration on any command line of the worker's namespace, no host path in its
    environment or in what its process still holds of the configuration."""
    _, found = probe
    cmdlines = found["cmdlines"]
    assert cmdlines, "the worker sees no process at all"
    for pid, cmdline in cmdlines.items():
        args = cmdline.split("\0")
        assert args[1:5] == ["-I", "-S", "-B", "-c"] and args[5] == sandbox.BOOT, (pid, args[:5])
    assert "agw-" not in found["environ"] and "/work" not in found["environ"]
    assert found["configs"] and all(set(keys) <= set(worker.LEARNER_CONFIG) for keys in found["configs"]), found["configs"]
    for text in found["config_values"]:
        assert "agw-" not in text and "site-packages" not in text and ROOT not in text, text


@pytest.mark.slow
def test_every_installed_copy_of_the_course_is_hidden(probe):
    """The editable install of this venv: its finder and .pth (which name the checkout) and its
    metadata are masked, and nothing imports."""
    _, found = probe
    assert set(found["imports"].values()) == {"ModuleNotFoundError"}, found["imports"]
    if any("attention_course" in name for name in os.listdir(sandbox._site_dirs()[0])):
        assert found["course"], "the venv's course files should be visible (and masked)"
    for path, content in found["course"].items():
        assert content in ("", []), (path, content)


@pytest.mark.slow
def test_the_template_imported_nothing_of_the_course(probe):
    """Workers are forked from a template that imported torch once: no module of the course (the
    library, its helpers, the grader, the checks, the tests) is in a learner's ``sys.modules``; the
    wire format is there as a module of its own, loaded from its source text."""
    _, found = probe
    course = [m for m in found["modules"] if m.split(".")[0] in ("attnlab", "autograder", "tests", "_grading", "conftest")
              or m.startswith(("test_", "_checks"))]
    assert not course, course
    assert "torch" in found["modules"] and "protocol" in found["modules"], "the template should have imported torch"


@pytest.mark.slow
def test_a_worker_holds_only_its_own_pipes(probe):
    """No descriptor of the grader, the template or another worker reaches the learner's process:
    /dev/null as stdin, its output pipe (1, 2), its reply pipe (3) and its request pipe (4)."""
    _, found = probe
    descriptors = {int(fd): target for fd, target in found["descriptors"].items()}
    assert descriptors.pop(0) == "/dev/null", descriptors
    assert sorted(descriptors) == [1, 2, 3, 4], descriptors
    assert all(target.startswith("pipe:") for target in descriptors.values()), descriptors
    assert descriptors[1] == descriptors[2] != descriptors[3] != descriptors[4]


@pytest.mark.slow
def test_a_template_is_not_used_again_after_a_worker_misbehaved():
    """A worker that dies (here: os._exit while the notebook runs) retires the template that forked
    it; the next worker comes from a fresh one. A well-behaved worker leaves the template in use.
    (A retired template is closed once no worker of it is open: the probe fixture may hold one.)"""
    honest = [{"index": 1, "source": "def f():\n    return 1\n"}]
    with Worker(honest, FAST) as w:
        assert w.call("f") == 1
        first = w._template
    with Worker(honest, FAST) as w:
        assert w._template is first
    with Worker([{"index": 1, "source": "import os\nos._exit(3)"}], FAST) as w:
        assert w.dead and "exit code 3" in w.dead and w._template is first
    assert first.retired
    with Worker(honest, FAST) as w:
        assert w.call("f") == 1 and w._template is not first


def test_hiding_finds_non_editable_copies_in_site_folders(tmp_path):
    site = tmp_path / "lib" / "site-packages"
    for folder in ("attnlab", "autograder", "attention_course-0.1.0.dist-info", "numpy", "attnlabx"):
        (site / folder).mkdir(parents=True)
    for name in ("__editable__.attention_course-0.1.0.pth", "__editable___attention_course_0_1_0_finder.py",
                 "attnlab.py", "distutils-precedence.pth"):
        (site / name).write_text("x")
    hidden = sandbox._hidden([str(tmp_path)], [str(site)])
    assert sorted(os.path.basename(p) for p in hidden) == sorted(
        ["attnlab", "autograder", "attention_course-0.1.0.dist-info", "__editable__.attention_course-0.1.0.pth",
         "__editable___attention_course_0_1_0_finder.py", "attnlab.py"])
    assert sandbox._hidden(["/nowhere"], [str(site)]) == []  # outside every bind: nothing to mask


@pytest.mark.slow
def test_a_non_editable_install_is_hidden_too(tmp_path):
    """A wheel installed into a venv that a grader runs from the checkout (so that ``find_spec`` finds
    the checkout first): the installed copy is masked as well."""
    require_sandbox("user")
    from _venvs import fresh_venv as _fresh_venv, pip_install as _pip, source_copy as _source_copy

    src = _source_copy(tmp_path)
    python = _fresh_venv(tmp_path / "venv")
    _pip(python, ".", cwd=src)
    shutil.rmtree(src)
    script = """
import json, sys
from autograder.grading.submission import Submission
from autograder.protocol import Limits
import importlib.util
assert importlib.util.find_spec("attnlab").origin.startswith(sys.argv[1]), "the checkout should be found first"
cell = '''
import os, sys
course = {}
for folder in [p for p in sys.path if p.endswith("site-packages")]:
    for entry in os.listdir(folder):
        if "attention_course" in entry or entry in ("attnlab", "autograder"):
            path = os.path.join(folder, entry)
            course[path] = sorted(os.listdir(path)) if os.path.isdir(path) else open(path).read()
try:
    import attnlab.attention
    imported = attnlab.attention.__file__
except ImportError as exc:
    imported = type(exc).__name__
'''
with Submission([{"index": 1, "source": cell}], Limits(startup_s=60, call_s=30)) as sub:
    print(json.dumps({"course": sub.get("course"), "imported": sub.get("imported")}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = subprocess.run([str(python), "-c", script, ROOT], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["imported"] == "ModuleNotFoundError", found
    installed = [p for p in found["course"] if p.startswith(str(tmp_path))]
    assert any(p.endswith("/attnlab") for p in installed) and any(p.endswith(".dist-info") for p in installed), found
    assert all(content in ("", []) for content in found["course"].values()), found["course"]


# ----------------------------------------------------------------------------- 8. the filter itself
def test_the_filter_numbers_are_the_kernels():
    """The syscall numbers of the seccomp filter, against libseccomp's tables where it is installed."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        pytest.skip("libseccomp is not installed")
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    for index, machine in enumerate(("x86_64", "aarch64")):
        for name, numbers in {**worker.DENIED, "clone": (worker.CLONE["x86_64"], worker.CLONE["aarch64"]),
                              "clone3": (worker.CLONE3,) * 2,
                              "seccomp": (worker.SECCOMP["x86_64"], worker.SECCOMP["aarch64"])}.items():
            known = lib.seccomp_syscall_resolve_name_arch(worker.AUDIT_ARCH[machine], name.encode())
            if known == -1:  # newer than this libseccomp
                continue
            assert numbers[index] == (known if known >= 0 else None), (machine, name, known)
        program = worker.seccomp_program(machine)
        assert program[0] == (0x20, 0, 0, 4) and program[1][3] == worker.AUDIT_ARCH[machine]


# ----------------------------------------------------------------------------- 9. blame
@pytest.mark.parametrize("message, fault", [
    ({"ready": True, "errors": [{"cell": [1], "error": "x"}]}, "learner"),
    ({"ready": True, "errors": [{"cell": 1, "error": {"a": 1}}]}, "learner"),
    ({"ready": True, "errors": [{"cell": 99, "error": "x"}]}, "learner"),
    ({"ready": True, "errors": [{"cell": 1, "error": "x" * 5000}]}, "learner"),
    ({"ready": True, "errors": "all"}, "learner"),
    ({"ready": 1, "errors": []}, "learner"),
    ({"ready": True, "errors": [], "score": 10}, "learner"),
    ({"progress": "1; rm -rf /"}, "learner"),
    ({"ready": True, "errors": [{"cell": 1, "error": "ValueError: \udcff\x1b[31m"}]}, "accepted"),
])
def test_worker_messages_are_checked_strictly(message, fault):
    cells = {1, 2}
    try:
        if "progress" in message:
            sandbox.check_progress(message, cells)
        else:
            errors = sandbox.check_ready(message, cells)
            assert fault == "accepted"
            assert errors == [{"cell": 1, "error": "ValueError: \ufffd[31m"}]  # no surrogate, no escape
            json.dumps(errors).encode("utf-8")
    except sandbox.Malformed:
        assert fault == "learner"


@pytest.mark.parametrize("reply", [{"ok": "yes", "value": 1}, {"ok": True, "value": 1, "extra": 2},
                                   {"ok": False, "kind": "raised", "error": ["x"]}, {"value": 1}])
def test_malformed_replies_are_refused(reply):
    with pytest.raises(sandbox.Malformed):
        sandbox.check_reply(reply)


@pytest.mark.slow
def test_a_forged_message_is_the_learners_not_an_internal_error(tmp_path):
    """A notebook that writes a malformed "ready" onto the grader's pipe: every check fails with a
    plain message, and the grade is not an internal error (it is cached like any other)."""
    forge = """
import fcntl, json, os, struct
body = json.dumps({"ready": True, "errors": [{"cell": {"$tensor": 1}, "error": 7}]}).encode()
for fd in range(3, 256):
    try:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
            os.write(fd, struct.pack(">II", len(body), 0) + body)
    except OSError:
        pass
"""
    path = write(with_cells(solved_notebook("ps02_attention"), append=[forge]), tmp_path / "m" / "ps02_attention.ipynb")
    result = grade("ps02_attention", path, FAST)
    assert result.score == 0 and not result.internal_error
    assert "must not write to the grader's pipes" in result.fatal and "internal" not in result.fatal


# ----------------------------------------------------------------------------- 10. grader memory
def _feed(data: bytes) -> int:
    r, w = os.pipe()

    def writer():
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(w, view[:1 << 16]):]
        except OSError:  # the reader gave up: fine
            pass
        os.close(w)

    threading.Thread(target=writer, daemon=True).start()
    return r


def _message(table: dict, data: bytes) -> bytes:
    head = json.dumps(table).encode()
    blob = len(head).to_bytes(8, "little") + head + data
    return struct.pack(">II", 2, len(blob)) + b"{}" + blob


def test_a_reply_of_a_million_empty_tensors_is_refused_before_it_costs_memory():
    """About 50 MB of header naming 900k empty tensors: refused after reading its first bytes."""
    table = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(900_000)}
    fd = _feed(_message(table, b""))
    del table
    tracemalloc.start()
    try:
        with pytest.raises(protocol.ProtocolError, match="a header of"):
            protocol.read_message(fd, deadline=time.monotonic() + 30, max_blob=64 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        os.close(fd)
    assert peak < 4 << 20, peak


@pytest.mark.parametrize("table, data, match", [
    ({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(protocol.MAX_TENSORS + 1)},
     b"", "more than the"),
    ({"a": {"dtype": "F32", "shape": [10 ** 9], "data_offsets": [0, 8]}}, b"\0" * 8, "does not fit"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 16, "does not match"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
     b"\0" * 8, "overlap"),
    ({"a": {"dtype": "PICKLE", "shape": [1], "data_offsets": [0, 1]}}, b"\0", "malformed entry"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "malformed entry"),
])
def test_tensor_headers_are_checked_before_loading(table, data, match):
    with pytest.raises(protocol.ProtocolError, match=match):
        protocol.read_message(_feed(_message(table, data)), deadline=time.monotonic() + 30)


def test_a_worker_cannot_send_more_tensors_than_allowed():
    with pytest.raises(protocol.ProtocolError, match="more than"):
        protocol.encode([torch.zeros(0)] * (protocol.MAX_TENSORS + 1))
    good = {f"t{i}": torch.full((2,), float(i)) for i in range(3)}
    r, w = os.pipe()
    protocol.write_message(w, {"ok": True}, good)
    header, tensors = protocol.read_message(r, deadline=time.monotonic() + 5)
    assert header == {"ok": True} and all(torch.equal(tensors[k], v) for k, v in good.items())


# ----------------------------------------------------------------------------- 14. processes in user mode
NOBODY = """
set -e
mount --make-rprivate /
# The interpreter lives under /root (0700 here): show the unprivileged user a copy of the way to it.
if [ -d /root/.pyenv ]; then
    mkdir -p "$1"
    mount --bind /root/.pyenv "$1"
    mount -t tmpfs -o mode=755,size=1m tmpfs /root
    mkdir /root/.pyenv
    mount --move "$1" /root/.pyenv
fi
nobody="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all"
$nobody "$2" -c "import torch, autograder.grading.sandbox" 2>/dev/null || exit 77  # the venv is not readable
exec $nobody "$2" -c "$3"
"""
FORK_BOMB = """
import json
from autograder.grading.sandbox import Worker, sandbox_mode, cgroup_support
from autograder.protocol import Limits
cell = '''
import os, time
def bomb(n):
    pids = []
    for _ in range(n):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    return len(pids)
'''
with Worker([{"index": 1, "source": cell}], Limits(nproc=16, startup_s=60, call_s=60)) as w:
    print(json.dumps({"uid": __import__("os").getuid(), "mode": sandbox_mode(), "cgroup": cgroup_support(),
                      "dead": w.dead, "forked": w.call("bomb", 200)}))
"""


@pytest.mark.slow
def test_an_unprivileged_grader_bounds_a_fork_bomb(tmp_path):
    """The grader as an ordinary user (user mode, no cgroup): RLIMIT_NPROC, set inside the worker's
    user namespace, counts only the worker's tree, so a fork bomb stops at the limit."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to become an unprivileged user for the test")
    out = subprocess.run(["unshare", "--mount", "--", "sh", "-c", NOBODY, "sh", str(tmp_path / "pyenv"),
                          sys.executable, FORK_BOMB], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if out.returncode == 77:
        pytest.skip("the checkout or the venv is not readable by an unprivileged user here")
    assert out.returncode == 0, out.stdout + out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["uid"] == 65534 and found["mode"] == "user" and found["cgroup"] is None and found["dead"] is None, found
    assert 0 < found["forked"] < 16, found
