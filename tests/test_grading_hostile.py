"""Hostile and broken submissions: each gets the right score and a clear message, and none of them
crashes the run or changes another learner's grade (they are graded in parallel with an honest one).

A "perfect learner" notebook is changed in one way per case. Expected scores are computed from the
check module's POINTS: full marks, or full marks without the checks a case breaks.
"""
from __future__ import annotations

import os
import random
import subprocess

import nbformat
import pytest

from _grading import ROOT, processes_named, require_sandbox, solved_notebook, with_cells, write
from autograder import checks
from autograder.grading.runner import grade_each
from autograder.grading.sandbox import Cgroup, cgroup_support, sandbox_mode
from autograder.grading.submission import Submission
from autograder.protocol import Limits

pytestmark = pytest.mark.slow
ASSIGNMENT = "ps02_attention"
LIMITS = Limits(startup_s=6, call_s=6, cpu_s=120)
ATTENTION_TESTS = ["test_attention_shapes", "test_attention_values", "test_attention_mask", "test_attention_fully_masked"]
POINTS = checks.load(ASSIGNMENT).POINTS
FULL = sum(POINTS.values())


def without(*tests: str) -> float:
    """Full marks less the points of ``tests``."""
    return FULL - sum(POINTS[t] for t in tests)


NO_ATTENTION = without(*ATTENTION_TESTS, "test_attention_dropout")  # every check that calls the attention
NO_SCALING = '''
def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):
    weights = masked_softmax(query @ key.transpose(-2, -1), mask)
    return weights @ value, weights
'''


def attention(body: str) -> dict:
    """Replace the attention solution with a function whose body is ``body``."""
    code = "def scaled_dot_product_attention(query, key, value, mask=None, dropout_p=0.0):\n"
    return {"scaled_dot_product_attention": code + "".join("    " + line + "\n" for line in body.strip().splitlines())}


# The name (/proc/PID/comm) of the processes a submission detaches: none may outlive the run.
MARKER = f"agdetach{random.randrange(16 ** 6):06x}"
DETACHES = f"""
import ctypes, os, time
if os.fork() == 0:
    os.setsid()  # out of the worker's process group and session
    if os.fork() == 0:  # and no longer the worker's child either
        ctypes.CDLL(None).prctl(15, b"{MARKER}", 0, 0, 0)  # PR_SET_NAME
        while True:
            time.sleep(0.05)
    os._exit(0)
"""
# A forged "ready" written straight onto the grader's reply pipe (the write end among the open fds).
FORGES_READY = """
import fcntl, json, os, struct
body = json.dumps({"ready": True, "errors": [{"cell": [1], "error": {"not": "text"}}] * 3}).encode()
for fd in range(3, 256):
    try:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
            os.write(fd, struct.pack(">II", len(body), 0) + body)
    except OSError:
        pass
"""

# A learner who looks for the course in the worker's memory (its template imported none of it): the
# attention raises, and those checks fail with the list, if any module of the course is loaded.
LOOKS_FOR_THE_COURSE = """
import sys
_attention = scaled_dot_product_attention

def scaled_dot_product_attention(*args, **kwargs):
    course = sorted(m for m in sys.modules if m.split(".")[0] in ("attnlab", "autograder"))
    if course:
        raise RuntimeError(f"course modules in the worker: {course}")
    return _attention(*args, **kwargs)
"""

# name -> (how to change the notebook, expected score, {test: substring of its message})
CASES = {
    "honest": (dict(), FULL, {}),
    "syntax_error": (dict(replace={"scaled_dot_product_attention": "def scaled_dot_product_attention(q, k, v:\n    pass"}),
                     NO_ATTENTION, {"test_attention_values": "SyntaxError"}),
    "missing_function": (dict(replace={"scaled_dot_product_attention": "def attention(q, k, v, mask=None):\n    pass"}),
                         NO_ATTENTION, {"test_attention_values": "does not define `scaled_dot_product_attention`"}),
    "infinite_loop_in_function": (dict(replace=attention("while True:\n    pass")),
                                  NO_ATTENTION, {"test_attention_shapes": "did not return within", "test_attention_values": "not run again"}),
    "infinite_loop_at_top_level": (dict(append=["while True:\n    pass"]), 0, {"test_masked_softmax": "did not finish running"}),
    "ignores_signals_and_loops": (dict(append=["import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):\n"
                                               "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass"]),
                                  0, {"test_masked_softmax": "did not finish running"}),
    "memory_bomb_in_function": (dict(replace=attention("hog = [torch.empty(10**8) for _ in range(1000)]")),
                                NO_ATTENTION, {"test_attention_values": "allocate"}),
    "memory_bomb_at_top_level": (dict(append=["hog = []\nwhile True:\n    hog.append(torch.empty(10**8))"]), FULL, {}),
    "one_huge_allocation": (dict(append=["hog = bytes(10**11)"]), FULL, {}),
    "sys_exit_at_top_level": (dict(append=["import sys\nsys.exit(0)"]), FULL, {}),
    "os_exit_at_top_level": (dict(append=["import os\nos._exit(0)"]), 0, {"test_masked_softmax": "exit code 0"}),
    "os_exit_in_function": (dict(replace=attention("import os\nos._exit(3)")), NO_ATTENTION, {"test_attention_shapes": "exit code 3"}),
    "segfault_in_function": (dict(replace=attention("import ctypes\nctypes.string_at(0)")),
                             NO_ATTENTION, {"test_attention_shapes": "segmentation fault"}),
    # Every course package is hidden from the worker: the library, its helpers and the grader.
    "imports_the_library": (dict(replace={"scaled_dot_product_attention":
                                          "from attnlab import scaled_dot_product_attention"}),
                            NO_ATTENTION, {"test_attention_values": "No module named 'attnlab'"}),
    "imports_the_course_helpers": (dict(replace={"scaled_dot_product_attention":
                                                 "from attnlab.course.bugs import scaled_dot_product_attention"}),
                                   NO_ATTENTION, {"test_attention_values": "No module named 'attnlab'"}),
    "imports_the_grader": (dict(replace={"scaled_dot_product_attention":
                                         "from autograder.checks.test_ps02_attention import ref\n"
                                         "scaled_dot_product_attention = ref.scaled_dot_product_attention"}),
                           NO_ATTENTION, {"test_attention_values": "No module named 'autograder'"}),
    "patches_torch_and_checks": (dict(replace={"scaled_dot_product_attention": NO_SCALING}, append=[
        "import torch, builtins\ntorch.allclose = lambda *a, **k: True\ntorch.testing.assert_close = lambda *a, **k: None\n"
        "torch.Tensor.__eq__ = lambda *a: True\nbuiltins.isinstance = lambda *a: True\n"
        "try:\n    import autograder.checks.expect as e\n    e.tensor = lambda *a, **k: None\nexcept ImportError:\n    pass"]),
        without("test_attention_values", "test_attention_mask", "test_attention_dropout"), {"test_attention_values": "values differ"}),
    "prints_fake_success": (dict(replace={"scaled_dot_product_attention": NO_SCALING},
                                 append=["print('All tests passed! Score: 10/10')\nprint('{\"score\": 10}')"]),
                            without("test_attention_values", "test_attention_mask", "test_attention_dropout"), {"test_attention_values": "values differ"}),
    "returns_an_object_equal_to_everything": (dict(replace=attention(
        "class Anything:\n    def __eq__(self, other):\n        return True\nreturn Anything(), Anything()")),
        NO_ATTENTION, {"test_attention_values": "expected a tensor, got an object of type Anything"}),
    "returns_a_tensor_subclass": (dict(replace=attention(
        "class Liar(torch.Tensor):\n    @classmethod\n    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        return True\nout = torch.zeros(*query.shape[:-1], value.shape[-1]).as_subclass(Liar)\n"
        "w = torch.zeros(*query.shape[:-1], key.shape[-2]).as_subclass(Liar)\nreturn out, w")),
        NO_ATTENTION + POINTS["test_attention_shapes"], {"test_attention_values": "values differ"}),
    "huge_output": (dict(append=["import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 500_000)"]), FULL, {}),
    "forks_a_child_that_outlives_it": (dict(append=["import os\nif os.fork() == 0:\n    os.setsid()\n"
                                                    "    os.execv('/usr/bin/sleep', ['sleep', '987.654'])"]), FULL, {}),
    "detaches_a_looping_child": (dict(append=[DETACHES]), FULL, {}),
    "forges_a_ready_message": (dict(append=[FORGES_READY]), 0, {"test_masked_softmax": "must not write to the grader's pipes"}),
    "too_much_code": (dict(append=["blob = '" + "x" * (3 << 20) + "'"]), 0, {"test_masked_softmax": "more than the 2 MB"}),
    "fork_bomb": (dict(append=["import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"]),
                  0, {"test_masked_softmax": "did not finish running"}),
    "warns_and_writes_to_stderr": (dict(append=["import sys, warnings\nwarnings.warn('deprecated', DeprecationWarning)\n"
                                                 "warnings.warn('careful')\nsys.stderr.write('Error: something odd\\n')"]), FULL, {}),
    "finds_no_course_module_loaded": (dict(append=[LOOKS_FOR_THE_COURSE]), FULL, {}),
    "deleted_test_cells": ("delete_tests", FULL, {}),
    "edited_test_cells": ("edit_tests", FULL, {}),
}


def _build(name, spec, folder):
    nb = solved_notebook(ASSIGNMENT)
    if spec == "delete_tests":
        nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    elif spec == "edit_tests":
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                meta["points"] = 100
                cell.source = "print('ok')"
        # and a forged extra graded cell
        extra = nbformat.v4.new_code_cell("print('free points')")
        extra.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 50, "grade_id": "bonus",
                                      "locked": True, "schema_version": 3, "task": False}
        nb.cells.append(extra)
    else:
        nb = with_cells(nb, **spec)
    return write(nb, os.path.join(folder, name, ASSIGNMENT + ".ipynb"))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("hostile"))
    paths = {name: _build(name, spec, folder) for name, (spec, _, _) in CASES.items()}
    return dict(grade_each(ASSIGNMENT, paths, jobs=2, limits=LIMITS))


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_submission_gets_the_right_score(results, name):
    if name.startswith("imports_the_") or name == "detaches_a_looping_child":
        require_sandbox("user")  # without namespaces the worker can import the installed course package
    _, score, messages = CASES[name]
    result = results[name]
    details = [(t.name, t.points, t.message) for t in result.tests]
    assert result.score == score, details
    assert result.max_score == FULL
    by_name = {t.name: t for t in result.tests}
    for test, fragment in messages.items():
        assert fragment in by_name[test].message, details
    assert not any(t.internal_error for t in result.tests), result.output


def test_huge_output_is_capped(results):
    assert len(results["huge_output"].output) < 100_000


def test_no_worker_process_survives(results):
    """Children forked by submissions die with their worker, even those that left its session and its
    process group (the pid namespace's init takes them with it), and no worker's cgroup is left."""
    if sandbox_mode() == "none" and not cgroup_support():
        require_sandbox("user")
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert "sleep 987.654" not in ps
    assert not processes_named(MARKER)
    if cgroup_support():
        Cgroup.retry_pending(5.0)  # a folder still busy when its worker closed is removed a little later
        _, parents = Cgroup.parents()
        left = [name for parent in parents if os.path.isdir(parent)
                for name in os.listdir(parent) if name.split("-")[2:3] == [str(os.getpid())]]
        assert not left, left


PROBE = r'''
import os, glob, socket
SECRETS = %r
found = {}
for path in SECRETS:
    try:
        with open(path) as handle:
            found[path] = handle.read(100)
    except Exception as exc:
        found[path] = type(exc).__name__
written = {}
for path in %r:
    try:
        with open(path, "w") as handle:
            handle.write("pwned")
        written[path] = "written"
    except Exception as exc:
        written[path] = type(exc).__name__
try:
    socket.create_connection(("127.0.0.1", 22), timeout=1)
    network = "connected"
except Exception as exc:
    network = type(exc).__name__
visible = sorted(glob.glob("/work/*/*")) + sorted(glob.glob(%r + "/*"))
env = dict(os.environ)
'''


@pytest.mark.parametrize("mode", ["root", "user"])
def test_worker_cannot_read_secrets_write_outside_or_reach_the_network(tmp_path, mode):
    require_sandbox(mode)
    other_student = tmp_path / "bob" / "ps02_attention.ipynb"
    other_student.parent.mkdir()
    other_student.write_text("bob's answers")
    secrets = [os.path.join(ROOT, "attnlab", "attention.py"),
               os.path.join(ROOT, "autograder", "checks", "test_ps02_attention.py"),
               os.path.join(ROOT, "solutions", ASSIGNMENT, ASSIGNMENT + ".ipynb"),
               str(other_student), "/root/.bash_history", "/etc/shadow", "/etc/hostname"]
    targets = [str(tmp_path / "pwned"), os.path.join(ROOT, "pwned"), "/usr/pwned", "/etc/pwned"]
    nb = with_cells(solved_notebook(ASSIGNMENT), append=[PROBE % (secrets, targets, str(tmp_path))])
    path = write(nb, tmp_path / "mallory" / "ps02_attention.ipynb")
    with Submission.from_notebook(path, limits=LIMITS, mode=mode) as sub:
        found, written = sub.get("found"), sub.get("written")
        network, visible, env = sub.get("network"), sub.get("visible"), sub.get("env")
    assert all(value in ("FileNotFoundError", "PermissionError") for value in found.values()), found
    assert all(value != "written" for value in written.values()), written
    for target in targets:
        assert not os.path.exists(target)
    assert network != "connected"
    assert not [p for p in visible if not p.endswith("/.venv")], visible
    assert not any("KEY" in k or "TOKEN" in k or "SECRET" in k for k in env), env
