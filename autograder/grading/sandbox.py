"""The trusted side of a worker: start it with limits, talk to it under deadlines, kill its whole tree.

Isolation, strongest first (``sandbox_mode()`` picks the best that works on this machine;
``mode_guarantees(mode)`` says in one line what each guarantees; ``autograder/grading/README.md``
says it at length):

``root``   the grader runs as root: ``unshare --mount --net --pid --ipc --uts --cgroup`` and the
           worker pivots into a minimal read-only root (system, interpreter, venv only; every
           installed copy of the course masked), then its learner process switches to a random
           unprivileged uid. It cannot read the repository, the solutions, the checks, other
           submissions or the gradebook, cannot write anywhere but its own tmpfs, has no network,
           and ``RLIMIT_NPROC`` holds.
``user``   the grader is an ordinary user: the same, inside a user namespace
           (``unshare --user --map-root-user``), with every capability dropped; ``RLIMIT_NPROC``
           is set inside that namespace, where (Linux >= 5.14) it counts only this worker's tree.
``none``   namespaces are not available: a fresh temporary folder, a scrubbed environment,
           ``python -I -S``, the resource limits, and (as root) an unprivileged uid. The worker could
           then still read world-readable files: prefer a machine where ``unshare`` works.

In every mode:

- **Its tree dies with it, by construction.** The worker's first process (``worker.run_init``) is
  pid 1 of its pid namespace: killing it kills every process of the namespace, ``setsid()`` or
  not. It dies when the grader dies (a parent-death signal from ``unshare --kill-child``, which it
  never loses because it never changes its credentials, and the hang-up of the grader's end of the
  request pipe). Where the machine offers a cgroup (v1 ``pids``/``memory``/``freezer``, or v2 with
  ``cgroup.kill``), each worker also gets its own, created before the worker starts and removed by
  this side after freezing and killing what is in it; cgroups left by a grader killed with -9 are
  cleaned up by the next one.
- **Limits over the tree:** the cgroup's memory and process limits bound all of the worker's
  processes together; per-process ``RLIMIT_AS``, ``RLIMIT_CPU``, ``RLIMIT_FSIZE``,
  ``RLIMIT_CORE=0``, ``RLIMIT_NOFILE`` and ``RLIMIT_NPROC`` always apply too.
- **Every read and write has a deadline:** the request pipe is non-blocking on this side, so a
  worker that stops reading (or shrinks its pipe) is killed when the call's time is up.
- **Nothing about the host on its command line or in its environment:** the command line is
  ``python -I -S -B -c BOOT``; the configuration, ``worker.py`` and ``protocol.py`` travel
  through the request pipe. (The interpreter's own path, the venv's, is visible: the worker
  runs it.)
- **A seccomp filter** (``worker.seccomp_program``, x86_64 and aarch64) denies what a notebook
  never needs: new namespaces, mount, bpf, io_uring, ptrace, keyctl, kexec, modules and the like.
- **Replies are read as untrusted data:** every message is checked field by field; one that is
  malformed is the learner's doing (their code shares the process that writes it), reported to
  them in plain words, never as an internal error.

Why our own ``unshare`` + ``pivot_root`` sequence and not bubblewrap: the whole sandbox is the ~120
lines of ``worker.build_root``/``drop_privileges``/``seccomp_program`` plus this file, all
readable Python; and a forked, pre-warmed worker template (the scaling issue: import torch once,
fork per submission) needs the child to enter its namespaces itself, which a tool that execs a
fresh program cannot do for an already running process. Bubblewrap (``--die-with-parent``,
``--new-session``, ``--seccomp``) would give the same properties at the price of one more
package and an exec per worker.
"""
from __future__ import annotations

import atexit
import ctypes
import functools
import importlib.util
import itertools
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time

from .. import protocol
from ..protocol import Limits
from .text import clean

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER_SCRIPT = os.path.join(HERE, "worker.py")
PROTOCOL_SCRIPT = os.path.join(os.path.dirname(HERE), "protocol.py")
SIGNAL_NAMES = {
    signal.SIGSEGV: "a segmentation fault", signal.SIGKILL: "SIGKILL (time or memory limit)",
    signal.SIGXCPU: "the CPU-time limit", signal.SIGXFSZ: "the file-size limit",
    signal.SIGABRT: "an abort", signal.SIGBUS: "a bus error", signal.SIGFPE: "a floating-point trap",
}
PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None)  # loaded here: a forked child (the preexec) must not call dlopen

# The worker's whole command line after the interpreter: it reads a 4-byte length and that many
# bytes of JSON from stdin ({"worker": source, "protocol": source, "config": {...}}) and runs the worker.
BOOT = """import os, json
def read(n):
    data = b''
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            raise SystemExit(3)
        data += chunk
    return data
boot = json.loads(read(int.from_bytes(read(4), 'big')))
exec(compile(boot.pop('worker'), 'worker.py', 'exec'), {'__name__': '__main__', 'BOOT': boot})
"""

TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
MAX_CELL_ERRORS = 1000
MAX_ERROR_CHARS = 2000


def clean_text(value, limit: int = MAX_ERROR_CHARS) -> str:
    """Text from the worker, made safe to store and show: bounded, valid UTF-8 (a lone surrogate
    becomes U+FFFD), no control characters but newlines and tabs (no terminal escapes)."""
    text = value if isinstance(value, str) else str(value)
    return clean(text[:limit])  # the one cleaner of learner text (text.py), as for names and feedback


class WorkerError(Exception):
    """The learner's code failed in a way that ends the request: its message is for the learner.

    ``kind`` is one of ``protocol.KINDS``; for ``protocol.RAISED``, ``error_type`` and ``error_types``
    name the exception and the types it derives from."""

    def __init__(self, message: str, kind: str, error_type: str | None = None, error_types: tuple[str, ...] = ()):
        super().__init__(message)
        self.kind = kind
        self.error_type = error_type
        self.error_types = tuple(error_types)

    @classmethod
    def from_reply(cls, reply: dict) -> "WorkerError":
        """A failed reply, read as untrusted data: a kind a worker may send, short type names only."""
        kind = reply.get("kind")
        if not isinstance(kind, str) or kind not in protocol.WORKER_KINDS:
            return cls("the notebook's process sent a malformed reply (an unknown kind of error)", protocol.PROTOCOL)
        message = clean_text(reply.get("error", "unknown error"), 1000)
        if kind != protocol.RAISED:
            return cls(message, kind)
        names = reply.get("error_types")
        names = [n for n in names[:32] if isinstance(n, str) and TYPE_NAME.fullmatch(n)] if isinstance(names, list) else []
        error_type = reply.get("error_type")
        error_type = error_type if isinstance(error_type, str) and TYPE_NAME.fullmatch(error_type) else None
        return cls(message, kind, error_type, tuple(names))


class Malformed(protocol.ProtocolError):
    """A message from the worker that breaks the protocol after the learner's code started: theirs."""


def check_progress(header: dict, cells: set[int]) -> int | None:
    if set(header) != {"progress"} or not (header["progress"] is None or
                                           (type(header["progress"]) is int and header["progress"] in cells)):
        raise Malformed("a progress message that names no cell of the notebook")
    return header["progress"]


def check_ready(header: dict, cells: set[int]) -> list[dict]:
    """The "ready" message: exactly ``{"ready": true, "errors": [{"cell": N, "error": "..."}]}``,
    each cell one of the notebook's, at most one error per cell."""
    errors = header.get("errors")
    if set(header) != {"ready", "errors"} or header["ready"] is not True or not isinstance(errors, list) \
            or len(errors) > min(len(cells), MAX_CELL_ERRORS):
        raise Malformed("a malformed message at the end of the notebook")
    seen = set()
    for entry in errors:
        if not (isinstance(entry, dict) and set(entry) == {"cell", "error"} and type(entry["cell"]) is int
                and entry["cell"] in cells and entry["cell"] not in seen and isinstance(entry["error"], str)
                and len(entry["error"]) <= MAX_ERROR_CHARS):
            raise Malformed("a malformed list of the cells that failed")
        seen.add(entry["cell"])
    return [{"cell": e["cell"], "error": clean_text(e["error"])} for e in errors]


def check_reply(reply: dict) -> None:
    ok = reply.get("ok")
    if type(ok) is not bool or (ok and not set(reply) <= {"ok", "value"}) or \
            (not ok and not isinstance(reply.get("error", ""), str)):
        raise Malformed("a reply that is not {ok, value} or {ok, kind, error}")


def _base_env() -> dict:
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/sandbox",
        "TMPDIR": "/tmp",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONFAULTHANDLER": "1",
        "PYTHONHASHSEED": "0",
    }


def _inside(path: str, folders) -> bool:
    return any(path == b or path.startswith(b.rstrip("/") + "/") for b in folders)


def _site_dirs() -> list[str]:
    """Folders of installed packages on this interpreter's path (a venv's site-packages, and those a
    .pth file adds): the worker needs them; a checkout on sys.path (the current folder) is not one."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    dirs += [p for p in sys.path if os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages")]
    return [d for i, d in enumerate(dirs) if os.path.isdir(d) and d not in dirs[:i]]


def _binds() -> list[str]:
    """Paths the worker needs to see (read-only): the system, the interpreter and the venv."""
    paths = ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin",
             "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"]
    # Of /etc only what the dynamic loader and the C library read: no shadow, no host config.
    paths += [p for p in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/passwd", "/etc/group",
                          "/etc/nsswitch.conf", "/etc/localtime", "/etc/hosts", "/etc/mime.types") if os.path.exists(p)]
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *_site_dirs()}
    for prefix in sorted(prefixes):
        real = os.path.realpath(prefix)
        for p in {prefix, real}:
            if not _inside(p, [b for b in paths if not b.startswith(("/dev", "/etc"))]):
                paths.append(p)
    exe = os.path.realpath(sys.executable)
    if not any(exe.startswith(b + "/") for b in paths):
        paths.append(os.path.dirname(exe))
    return paths


def _worker_path(binds: list[str]) -> list[str]:
    """The worker's sys.path (it runs with ``-S``): this interpreter's, less what it cannot see."""
    path = [p for p in sys.path if p and os.path.isabs(p) and _inside(p, binds)]
    return path + [d for d in _site_dirs() if d not in path]


# Every package of the course (the library, with its training code and course helpers, and the
# grader) and its distribution's metadata, wherever an installed copy lies.
COURSE_PACKAGES = ("attnlab", "autograder")
DISTRIBUTION = re.compile(r"^(__editable__[._]+)?attention[-_.]course([-_.].*)?$", re.I)


def _hidden(binds: list[str], site_dirs: list[str] | None = None) -> list[str]:
    """What to mask inside the bound folders: each course package where ``find_spec`` finds it, and
    in every site folder the worker can see, any ``attnlab``/``autograder`` package or module and
    any file of the ``attention_course`` distribution (``.dist-info``, an editable install's ``.pth``
    and finder, which name the checkout): an installed, non-editable copy is found this way too."""
    hide: list[str] = []

    def add(path):
        for p in {path, os.path.realpath(path)}:
            if _inside(p, binds) and p not in hide:
                hide.append(p)

    for package in COURSE_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            add(location)
    for folder in _site_dirs() if site_dirs is None else site_dirs:
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            continue
        for entry in entries:
            stem = entry[:-3] if entry.endswith(".py") else entry
            if stem in COURSE_PACKAGES or DISTRIBUTION.match(entry):
                add(os.path.join(folder, entry))
    return hide


def _unshare_cmd(mode: str) -> list[str]:
    # --kill-child: SIGKILL to the worker's init when unshare dies (unshare dies with the grader).
    base = ["unshare", "--mount", "--net", "--pid", "--ipc", "--uts", "--cgroup", "--fork", "--kill-child"]
    return base + (["--user", "--map-root-user"] if mode == "user" else []) + ["--"]


def _command(mode: str) -> list[str]:
    cmd = [sys.executable, "-I", "-S", "-B", "-c", BOOT]
    return cmd if mode == "none" else _unshare_cmd(mode) + cmd


@functools.lru_cache(maxsize=None)
def _sources() -> tuple[str, str]:
    with open(WORKER_SCRIPT, encoding="utf-8") as w, open(PROTOCOL_SCRIPT, encoding="utf-8") as p:
        return w.read(), p.read()


def _payload(cfg: dict) -> bytes:
    worker, proto = _sources()
    data = json.dumps({"worker": worker, "protocol": proto, "config": cfg}).encode()
    return len(data).to_bytes(4, "big") + data


SECCOMP_ARCHES = ("x86_64", "aarch64")
_seccomp: dict[str, bool] = {}  # mode -> whether the probe installed the filter


@functools.lru_cache(maxsize=None)
def sandbox_mode() -> str:
    """The strongest isolation that works here: 'root', 'user' or 'none' (probed once).

    The environment variable AUTOGRADER_SANDBOX=root|user|none overrides the probe.
    """
    forced = os.environ.get("AUTOGRADER_SANDBOX")
    if forced in ("root", "user", "none"):
        return forced
    if not shutil.which("unshare"):
        return "none"
    for mode in (["root"] if os.geteuid() == 0 else []) + ["user"]:
        tmp = tempfile.mkdtemp(prefix="agw-probe-")
        try:
            os.chmod(tmp, 0o755)
            os.mkdir(os.path.join(tmp, "root"))
            cfg = _config(mode, os.path.join(tmp, "root"), "/sandbox", -1, Limits())
            cfg.update(probe=True, probe_path=WORKER_SCRIPT)
            out = subprocess.run(_command(mode), input=_payload(cfg), capture_output=True, timeout=60,
                                 env=_base_env(), cwd=tmp, start_new_session=True)
            words = out.stdout.decode(errors="replace").split()
            if out.returncode == 0 and words[:1] == ["sandbox-ok"]:
                _seccomp[mode] = words[1:] == ["seccomp-on"]
                return mode
        except (OSError, subprocess.SubprocessError):
            pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return "none"


def seccomp_enabled(mode: str) -> bool:
    """Whether workers of this mode run under the seccomp filter (an architecture it knows)."""
    return _seccomp.get(mode, os.uname().machine in SECCOMP_ARCHES)


@functools.lru_cache(maxsize=None)
def _layout() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(binds, hidden, the worker's sys.path): fixed for the life of this grader."""
    binds = _binds()
    return tuple(binds), tuple(_hidden(binds)), tuple(_worker_path(binds))


def _config(mode: str, root: str, workdir: str, wfd: int, limits: Limits) -> dict:
    binds, hide, path = _layout()
    return {"sandbox": mode, "root": root, "binds": binds, "hide": hide, "path": path,
            "tmpfs_mb": limits.tmpfs_mb, "uid": random.randint(200_000, 260_000), "nproc": limits.nproc,
            "seccomp": seccomp_enabled(mode), "workdir": workdir, "wfd": wfd}


# ------------------------------------------------------------------------------------ cgroups
CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("pids", "memory", "freezer")
_cgroup_names = itertools.count()
_pending: list["Cgroup"] = []  # removed too early: still busy, to try again
_pending_lock = threading.Lock()


def _own_cgroups() -> dict[str, str]:
    """{controller or "" for v2: this process's cgroup path} from /proc/self/cgroup."""
    own = {}
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                own[controller] = path
    return own


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


class Cgroup:
    """One worker's control group(s), made and removed by the trusted side: its processes are
    counted, limited and killed together whatever they do (``setsid``, double forks, exec)."""

    def __init__(self, dirs: list[str], version: int):
        self.dirs, self.version = dirs, version

    @staticmethod
    def parents() -> tuple[int, list[str]] | None:
        """(version, [the folder that holds our workers' cgroups, per hierarchy]) or None."""
        own = _own_cgroups()
        if all(os.path.isdir(os.path.join(CGROUP_ROOT, c)) and c in own for c in V1_CONTROLLERS):
            return 1, [os.path.join(CGROUP_ROOT, c) + own[c].rstrip("/") + "/autograder" for c in V1_CONTROLLERS]
        if "" in own and os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
            return 2, [CGROUP_ROOT + own[""].rstrip("/") + "/autograder"]
        return None

    @staticmethod
    def owner_id(pid: int) -> str | None:
        """'<pid namespace>-<pid>-<start time>' of a live process in our pid namespace, else None."""
        try:
            with open(f"/proc/{pid}/stat") as handle:
                start = handle.read().rsplit(")", 1)[1].split()[19]
            return f"{os.stat('/proc/self/ns/pid').st_ino}-{pid}-{start}"
        except (OSError, IndexError):
            return None

    @classmethod
    def create(cls, limits: Limits) -> "Cgroup":
        if _pending:
            cls.retry_pending()
        version, parents = cls.parents()
        name = f"w-{cls.owner_id(os.getpid())}-{next(_cgroup_names)}-{random.randrange(1 << 30):x}"
        for parent in parents:
            if not os.path.isdir(parent):
                if version == 2:  # the controllers must be enabled on the way down (a delegated subtree)
                    _write(os.path.join(os.path.dirname(parent), "cgroup.subtree_control"), "+memory +pids")
                os.makedirs(parent, exist_ok=True)
                if version == 2:
                    _write(os.path.join(parent, "cgroup.subtree_control"), "+memory +pids")
        group = cls([os.path.join(p, name) for p in parents], version)
        try:
            for d in group.dirs:
                os.mkdir(d)
            memory, pids = str(limits.memory_mb << 20), str(limits.nproc + 2)  # + unshare and init
            if version == 1:
                pids_dir, memory_dir, _ = group.dirs
                _write(os.path.join(pids_dir, "pids.max"), pids)
                _write(os.path.join(memory_dir, "memory.limit_in_bytes"), memory)
                if os.path.exists(os.path.join(memory_dir, "memory.memsw.limit_in_bytes")):
                    _write(os.path.join(memory_dir, "memory.memsw.limit_in_bytes"), memory)  # no escape to swap
            else:
                _write(os.path.join(group.dirs[0], "pids.max"), pids)
                _write(os.path.join(group.dirs[0], "memory.max"), memory)
                if os.path.exists(os.path.join(group.dirs[0], "memory.swap.max")):
                    _write(os.path.join(group.dirs[0], "memory.swap.max"), "0")
        except OSError:
            group.remove()
            raise
        return group

    def join(self) -> None:
        """Move the calling process in (run in the worker's process before it execs)."""
        for d in self.dirs:
            _write(os.path.join(d, "cgroup.procs"), str(os.getpid()))

    def pids(self) -> set[int]:
        found = set()
        for d in self.dirs:
            try:
                with open(os.path.join(d, "cgroup.procs")) as handle:
                    found |= {int(x) for x in handle.read().split()}
            except OSError:
                pass
        return found

    def kill(self) -> None:
        """Kill every process in it: frozen first (v1 freezer), so that none can fork meanwhile."""
        if self.version == 2 and os.path.exists(os.path.join(self.dirs[0], "cgroup.kill")):
            _write(os.path.join(self.dirs[0], "cgroup.kill"), "1")
            return
        freezer = os.path.join(self.dirs[-1], "freezer.state") if self.version == 1 else \
            os.path.join(self.dirs[0], "cgroup.freeze")
        try:
            _write(freezer, "FROZEN" if self.version == 1 else "1")
            deadline = time.monotonic() + 2
            while self.version == 1 and time.monotonic() < deadline:
                with open(freezer) as handle:
                    if handle.read().strip() == "FROZEN":
                        break
                time.sleep(0.005)
        except OSError:
            pass
        for _ in range(100):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                _write(freezer, "THAWED" if self.version == 1 else "0")  # a frozen process dies when thawed
            except OSError:
                pass
            if self._wait_empty(0.2):
                break

    def _wait_empty(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self.pids():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def remove(self, patience_s: float = 2.0) -> bool:
        """Kill what is left and remove the folders (a folder with processes cannot be removed);
        whether they are gone. Folders still busy are tried again later (``retry_pending``)."""
        if self.pids():
            self.kill()
        deadline, pause = time.monotonic() + patience_s, 0.001
        for d in self.dirs:
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy for a moment after its last process died (a slow exit on a loaded machine)
                    if time.monotonic() > deadline:
                        with _pending_lock:
                            _pending.append(self)
                        return False
                    time.sleep(pause)
                    pause = min(pause * 2, 0.05)
        return True

    @staticmethod
    def retry_pending(patience_s: float = 0.0) -> None:
        """Remove the cgroups an earlier ``remove`` left busy (at the next worker, and at exit)."""
        with _pending_lock:
            groups = list(_pending)
            _pending.clear()
        for group in groups:
            group.remove(patience_s)

    @classmethod
    def clean_stale(cls) -> None:
        """Remove the cgroups of graders that died (killed with -9), killing what is left in them."""
        found = cls.parents()
        if not found:
            return
        version, parents = found
        names = set()
        for parent in parents:
            try:
                names |= {n for n in os.listdir(parent) if n.startswith("w-")}
            except OSError:
                pass
        pidns = str(os.stat("/proc/self/ns/pid").st_ino)
        for name in names:
            parts = name.split("-")  # w, pid namespace, pid, start time, sequence, random
            if len(parts) != 6 or parts[1] != pidns or not parts[2].isdigit():
                continue  # another pid namespace's grader: not ours to judge
            if cls.owner_id(int(parts[2])) != "-".join(parts[1:4]):  # that grader is gone
                cls([os.path.join(p, name) for p in parents], version).remove()


@functools.lru_cache(maxsize=None)
def cgroup_support() -> str | None:
    """'v1' or 'v2' when this grader can give each worker a cgroup with memory and process limits
    (probed once: made and removed); None otherwise (then only per-process limits apply).
    AUTOGRADER_CGROUP=0 turns them off."""
    if os.environ.get("AUTOGRADER_CGROUP") == "0" or not os.path.isdir(CGROUP_ROOT):
        return None
    try:
        if Cgroup.parents() is None:
            return None
        Cgroup.clean_stale()
        group = Cgroup.create(Limits())
        group.remove()
        atexit.register(Cgroup.retry_pending, 5.0)
        return f"v{group.version}"
    except (OSError, ValueError):
        return None


def mode_guarantees(mode: str) -> str:
    """One line for the CLI: what a worker of this sandbox mode can and cannot do on this machine."""
    cgroup = cgroup_support()
    tree = (f"memory and processes limited over its whole process tree by a cgroup ({cgroup})" if cgroup else
            "no cgroup here: memory limited per process only (RLIMIT_AS)")
    seccomp = "a seccomp filter" if seccomp_enabled(mode) else "no seccomp filter (unknown architecture)"
    if mode == "root":
        return (f"sandbox root: workers see only the system and the venv (no course, checks or other submissions), "
                f"have no network, run as an unprivileged uid under {seccomp} with RLIMIT_NPROC; their process tree "
                f"dies with its pid namespace; {tree}")
    if mode == "user":
        return (f"sandbox user: workers see only the system and the venv (no course, checks or other submissions), "
                f"have no network, run in a user namespace without capabilities under {seccomp}; their process tree "
                f"dies with its pid namespace; processes limited by RLIMIT_NPROC inside that namespace (Linux >= 5.14); "
                f"{tree}")
    return ("sandbox none: NO isolation: workers can read every world-readable file (the course's checks and "
            "reference included) and reach the network; only resource limits apply; "
            + (f"{tree}" if cgroup else "a process a worker detaches (setsid) can outlive it and fork without limit "
               "(no cgroup, no uid of its own)")
            + "; grade on a machine where `unshare` works")


# ------------------------------------------------------------------------------------ workers
class Worker:
    """One worker process tree running one submission. Use as a context manager."""

    def __init__(self, cells: list[dict], limits: Limits | None = None, mode: str | None = None):
        self.cells = cells
        self.limits = limits or Limits()
        self.mode = mode or sandbox_mode()
        self.proc: subprocess.Popen | None = None
        self.cgroup: Cgroup | None = None
        self.cell_errors: list[dict] = []
        self.dead: str | None = None  # why the worker can no longer answer
        self.dead_kind = protocol.DEAD  # protocol.TIMEOUT when it was stopped for running too long
        self.boot_failed = False  # the grader's fault (overload, broken sandbox), not the learner's
        self._output = bytearray()
        self._output_dropped = 0
        self._tmp: str | None = None
        self._parent = os.getpid()

    # ----------------------------------------------------------------- life cycle
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _preexec(self):
        if self.cgroup:  # first: everything the worker will ever start is inside it
            self.cgroup.join()
        # Dies with the grader. (The kernel sends it when the *thread* that started the worker ends:
        # each worker is started, used and closed by one thread of the grader.)
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != self._parent:
            os._exit(1)
        lim = self.limits
        limits = [(resource.RLIMIT_AS, lim.memory_mb << 20), (resource.RLIMIT_CPU, lim.cpu_s),
                  (resource.RLIMIT_FSIZE, lim.file_mb << 20), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 256)]
        for res, value in limits:
            resource.setrlimit(res, (value, value))

    def start(self) -> None:
        cells = {c["index"] for c in self.cells}
        code_bytes = sum(len(c["source"].encode("utf-8", "surrogatepass")) for c in self.cells)
        if code_bytes > protocol.MAX_JSON_BYTES // 2:
            self.dead, self.dead_kind = (f"the notebook's code cells hold {code_bytes >> 20} MB of text, more than the "
                                         f"{protocol.MAX_JSON_BYTES >> 21} MB a grading worker accepts"), protocol.UNREADABLE
            return
        self._tmp = tempfile.mkdtemp(prefix="agw-")
        os.chmod(self._tmp, 0o755)
        root = os.path.join(self._tmp, "root")
        os.mkdir(root)
        workdir = "/sandbox"
        if self.mode == "none":
            workdir = os.path.join(self._tmp, "work")
            os.mkdir(workdir)
            os.chmod(workdir, 0o777)
        if cgroup_support():
            self.cgroup = Cgroup.create(self.limits)
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        cfg = _config(self.mode, root, workdir, rep_w, self.limits)
        env = _base_env()
        if self.mode == "none":
            env.update(HOME=workdir, TMPDIR=workdir)
        try:
            self.proc = subprocess.Popen(
                _command(self.mode), stdin=req_r, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=self._tmp, env=env, pass_fds=(rep_w,), start_new_session=True,
                preexec_fn=self._preexec, close_fds=True)
        finally:
            os.close(req_r)
            os.close(rep_w)
        os.set_blocking(req_w, False)  # every write has a deadline: a worker that stops reading cannot hang us
        self._req, self._rep = req_w, rep_r
        self._drain = threading.Thread(target=self._drain_output, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + self.limits.boot_s
        current, booted = None, False
        try:
            protocol.write_bytes(self._req, _payload(cfg), deadline)
            protocol.write_message(self._req, {"op": "run", "cells": self.cells}, deadline=deadline)
            while True:
                header, _ = protocol.read_message(self._rep, deadline, max_blob=0)
                if not booted:
                    if header != {"progress": None}:
                        raise protocol.ProtocolError("the worker did not announce itself")
                    # The notebook's own time starts once the worker is up (torch imported).
                    booted, deadline = True, time.monotonic() + self.limits.startup_s
                    continue
                if "progress" in header:
                    current = check_progress(header, cells)
                    continue
                if "ready" in header:
                    self.cell_errors = check_ready(header, cells)
                    return
                raise Malformed("an unexpected message while the notebook ran")
        except TimeoutError:
            if not booted:
                self.boot_failed = True
                self._fail(f"the grading worker did not start within {self.limits.boot_s:g} s (not your fault: the machine is overloaded)")
                return
            self._fail(f"the notebook did not finish running within {self.limits.startup_s:g} s"
                       + (f" (it was still running cell {current}: an infinite loop?)" if current is not None else ""),
                       protocol.TIMEOUT)
        except (EOFError, protocol.ProtocolError, OSError) as exc:
            # Before the first message no learner code has run: a failure then is the grader's.
            self.boot_failed = not booted
            self._fail(self._ended("while the notebook ran" + (f" (cell {current})" if current is not None else ""), exc))

    def _drain_output(self):
        cap = self.limits.output_kb << 10
        stream = self.proc.stdout
        while True:
            chunk = stream.read1(1 << 16) if hasattr(stream, "read1") else stream.read(1 << 16)
            if not chunk:
                return
            room = cap - len(self._output)
            if room > 0:
                self._output += chunk[:room]
            self._output_dropped += max(0, len(chunk) - max(room, 0))

    @property
    def output(self) -> str:
        text = self._output.decode("utf-8", "replace")
        if self._output_dropped:
            text += f"\n[... {self._output_dropped} more bytes of output dropped]"
        return text

    def _init_pid(self) -> int | None:
        """The host pid of the worker's init (unshare's only child), or None."""
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as handle:
                children = handle.read().split()
            return int(children[0]) if len(children) == 1 else None
        except (OSError, ValueError):
            return None

    def _kill(self):
        """Kill the whole tree: init (which takes its pid namespace with it; unshare exits after it),
        the process group, then whatever is still in the cgroup (frozen, then killed)."""
        if self.proc and self.proc.poll() is None:
            init = self._init_pid() if self.mode != "none" else None
            try:
                if init:
                    os.kill(init, signal.SIGKILL)
                else:
                    os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # what is left of the group (mode none)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.cgroup and self.cgroup.pids():  # none left when the pid namespace did its work
            self.cgroup.kill()

    def _ended(self, when: str, exc: BaseException) -> str:
        if isinstance(exc, EOFError) and self.proc:
            try:  # the learner's process ended: let init report how before anything is killed
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self._kill()
        code = self.proc.returncode if self.proc else None
        if isinstance(exc, Malformed):
            return (f"the notebook's process sent the grader {exc} {when}: "
                    "a notebook must not write to the grader's pipes")
        if isinstance(exc, protocol.ProtocolError):
            return f"the notebook's process sent a malformed reply {when}: {exc}"
        if code is None:
            return f"the worker stopped answering {when}"
        if code > 128:  # init reports a signal that killed the learner's process as 128 + n
            code = 128 - code
        if code < 0:
            name = SIGNAL_NAMES.get(-code, f"signal {-code}")
            return f"the notebook's process was killed by {name} {when}"
        if code == 0 and "MemoryError" in self.output:
            return f"the notebook's process ran out of memory {when}"
        return f"the notebook's process exited (exit code {code}) {when}; os._exit or sys.exit?"

    def _fail(self, message: str, kind: str = protocol.DEAD) -> None:
        self._kill()
        self.dead, self.dead_kind = message, kind

    def close(self) -> None:
        self._kill()
        for fd in ("_req", "_rep"):
            try:
                os.close(getattr(self, fd))
            except (AttributeError, OSError):
                pass
        if self.cgroup:
            self.cgroup.remove()
            self.cgroup = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # ----------------------------------------------------------------- requests
    def request(self, header: dict, tensors: dict | None = None, label: str = "the call"):
        """Send one request; return the decoded value or raise WorkerError. Writing the request and
        reading the reply share the call's deadline."""
        if self.dead:
            raise WorkerError(self.dead, self.dead_kind)
        deadline = time.monotonic() + self.limits.call_s
        try:
            protocol.write_message(self._req, header, tensors, deadline=deadline)
            reply, out = protocol.read_message(self._rep, deadline, max_blob=self.limits.max_reply_mb << 20)
            check_reply(reply)
        except TimeoutError:
            self._fail(f"{label} did not return within {self.limits.call_s:g} s (an infinite loop, "
                       "or the notebook's process stopped reading?)", protocol.TIMEOUT)
            raise WorkerError(self.dead, protocol.TIMEOUT) from None
        except (EOFError, OSError, protocol.ProtocolError) as exc:
            self._fail(self._ended(f"during {label}", exc))
            raise WorkerError(self.dead, protocol.DEAD) from None
        if not reply["ok"]:
            raise WorkerError.from_reply(reply)
        try:
            return protocol.decode(reply.get("value"), out)
        except protocol.ProtocolError as exc:
            raise WorkerError(f"{label} returned something that could not be read: {exc}", protocol.PROTOCOL) from None

    def call(self, target, *args, method: str | None = None, keep: bool = False, label: str | None = None, **kwargs):
        structure, tensors = protocol.encode([list(args), kwargs])
        label = label or (f"`{target}`" if isinstance(target, str) else repr(target))
        header = {"op": "call", "target": target.ident if isinstance(target, protocol.Handle) else target,
                  "method": method, "keep": keep, "label": label,
                  "args": structure[0], "kwargs": structure[1]}
        return self.request(header, tensors, label=label)

    def get(self, name: str):
        return self.request({"op": "get", "name": name}, label=f"reading `{name}`")
