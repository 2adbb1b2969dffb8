"""The trusted side of a worker: start it with limits, talk to it under deadlines, kill its whole tree.

Isolation, strongest first (``sandbox_mode()`` picks the best that works on this machine;
``mode_guarantees(mode)`` says in one line what each guarantees; ``autograder/grading/README.md``
says it at length):

``root``   the grader runs as root: the worker enters new mount, network, pid, ipc, uts and cgroup
           namespaces and pivots into a minimal read-only root (system, interpreter, venv only; every
           installed copy of the course masked), then its learner process switches to a random
           unprivileged uid. It cannot read the repository, the solutions, the checks, other
           submissions or the gradebook, cannot write anywhere but its own tmpfs, has no network,
           and ``RLIMIT_NPROC`` holds.
``user``   the grader is an ordinary user: the same, inside a user namespace (root inside mapped
           to the grader's uid, as ``unshare --user --map-root-user``), with every capability
           dropped; ``RLIMIT_NPROC`` is set inside that namespace, where (Linux >= 5.14) it counts
           only this worker's tree.
``none``   namespaces are not available: a fresh temporary folder, a scrubbed environment,
           ``python -I -S``, the resource limits, and (as root) an unprivileged uid. The worker could
           then still read world-readable files: prefer a machine where namespaces work.

**Started from a template.** Each grading process starts one ``Template`` (``worker.template_main``:
``python -I -S -B -c BOOT`` that imports torch once, never runs learner code and imports nothing of
the course) and asks it to fork each worker; the forked child enters the worker's cgroup, limits
and namespaces itself (see ``worker.py``). A worker then starts in milliseconds instead of the
second an import of torch takes. A template is not used again after a worker it forked died,
timed out or broke the protocol.

In every mode:

- **Its tree dies with it, by construction.** The worker's init is pid 1 of its pid namespace:
  killing it (through a pidfd, never a pid that could be recycled) kills every process of the
  namespace, ``setsid()`` or not. It dies when the grader dies: the template dies with the grader
  (parent-death signal, and the hang-up of its socket), the worker's keeper with the template
  (parent-death signal) and with the hang-up of its status socket, init with its keeper
  (parent-death signal, never lost as init never changes its credentials) and with the hang-up of
  the request pipe. Where the machine offers a cgroup (v1 ``pids``/``memory``/``freezer``, or v2
  with ``cgroup.kill``), each worker also gets its own, created before the worker starts and
  removed by this side after freezing and killing what is in it; cgroups left by a grader killed
  with -9 are cleaned up by the next one.
- **Limits over the tree:** the cgroup's memory and process limits bound all of the worker's
  processes together; per-process ``RLIMIT_AS``, ``RLIMIT_CPU``, ``RLIMIT_FSIZE``,
  ``RLIMIT_CORE=0``, ``RLIMIT_NOFILE`` and ``RLIMIT_NPROC`` always apply too.
- **Every read and write has a deadline:** the request pipe is non-blocking on this side, so a
  worker that stops reading (or shrinks its pipe) is killed when the call's time is up.
- **Nothing about the host on its command line or in its environment:** the command line is
  ``python -I -S -B -c BOOT``; the configuration, ``worker.py`` and ``protocol.py`` travel
  through a pipe and a socket. (The interpreter's own path, the venv's, is visible: the worker
  runs it.)
- **No descriptor of the grader, the template or another worker:** the forked child keeps its own
  four pipe ends at fixed numbers and closes every other descriptor (``close_range``).
- **A seccomp filter** (``worker.seccomp_program``, x86_64 and aarch64) denies what a notebook
  never needs: new namespaces, mount, bpf, io_uring, ptrace, keyctl, kexec, modules and the like.
- **Replies are read as untrusted data:** every message is checked field by field; one that is
  malformed is the learner's doing (their code shares the process that writes it), reported to
  them in plain words, never as an internal error.

Why our own namespaces + ``pivot_root`` sequence and not bubblewrap: the whole sandbox is the ~200
lines of ``worker.be_born``/``build_root``/``drop_privileges``/``seccomp_program`` plus this file,
all readable Python; and the forked template needs the child to enter its namespaces itself, which
a tool that execs a fresh program cannot do for an already running process. Bubblewrap
(``--die-with-parent``, ``--new-session``, ``--seccomp``) would give the same properties at the
price of one more package and an import of torch per worker.

Linux >= 5.3 (pidfds); the descriptors are closed with ``close_range`` where Linux >= 5.9 has it.
"""
from __future__ import annotations

import atexit
import concurrent.futures
import ctypes
import functools
import importlib.util
import itertools
import json
import os
import queue
import random
import re
import resource
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time

from attnlab.course.messages import Message, _

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
LIBC = ctypes.CDLL(None)

# The template's whole command line after the interpreter: it reads a 4-byte length and that many
# bytes of JSON from stdin ({"worker": source, "protocol": source, "config": {...}}) and runs worker.py.
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
        self.message = message  # a Message (translatable) where the words are the grader's or the worker's
        self.kind = kind
        self.error_type = error_type
        self.error_types = tuple(error_types)

    @classmethod
    def from_reply(cls, reply: dict) -> "WorkerError":
        """A failed reply, read as untrusted data: a kind a worker may send, short type names only."""
        kind = reply.get("kind")
        if not isinstance(kind, str) or kind not in protocol.WORKER_KINDS:
            return cls(_("the notebook's process sent a malformed reply (an unknown kind of error)"), protocol.PROTOCOL)
        message = clean_text(reply.get("error", "unknown error"), 1000)
        if kind != protocol.RAISED and "message" in reply:  # the worker's own words, to translate
            try:
                rebuilt = Message.from_json(reply["message"])
                if clean_text(rebuilt, 1000) == message:
                    message = rebuilt
            except (ValueError, RecursionError):  # malformed or hostile: its English text only
                pass
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


@functools.lru_cache(maxsize=None)
def _sources() -> tuple[str, str]:
    with open(WORKER_SCRIPT, encoding="utf-8") as w, open(PROTOCOL_SCRIPT, encoding="utf-8") as p:
        return w.read(), p.read()


def die_with_parent(parent: int) -> None:
    """In a process started by ``start_process``: SIGKILL when the grader dies; exit if it already has."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


# The kernel sends the parent-death signal when the *thread* that started a process ends: the
# grader's long-lived helpers (templates, grading processes) are started by one thread that lives
# as long as this process, whichever thread asks for them.
_spawner: tuple[int, queue.Queue] | None = None
_spawner_lock = threading.Lock()


def _spawn_loop(requests: queue.Queue) -> None:
    while True:
        args, kwargs, done = requests.get()
        try:
            done.set_result(subprocess.Popen(args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - the caller's to handle
            done.set_exception(exc)


def start_process(args: list[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen(args, **kwargs)`` from this process's spawner thread."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner[0] != os.getpid():  # none yet, or a forked copy of this process
            _spawner = (os.getpid(), queue.Queue())
            threading.Thread(target=_spawn_loop, args=(_spawner[1],), name="autograder-spawner", daemon=True).start()
        requests = _spawner[1]
    done: concurrent.futures.Future = concurrent.futures.Future()
    requests.put((args, kwargs, done))
    return done.result()


def _exited(pidfd: int, seconds: float) -> bool:
    """Whether the process of ``pidfd`` has ended, waiting up to ``seconds``."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(max(0, int(seconds * 1000))))


def _kill_pidfd(pidfd: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass


class TemplateError(OSError):
    """The template could not start or fork a worker: the grader's problem, never the learner's."""


class TemplateTimeout(TemplateError):
    """A worker was not up within its boot time (a busy machine, a template still importing torch)."""


BIRTH_S = 5.0  # the least time a birth conversation gets: one cut short leaves the template unusable


class Template:
    """A pre-warmed worker template (``worker.template_main``), one per grading process: it imports
    torch once and forks each worker on request. It is started from the spawner thread, dies with
    this process, and is closed once retired (after a worker it forked misbehaved) and unused."""

    _current: "Template | None" = None
    _lock = threading.Lock()  # guards _current and every template's users and retired

    def __init__(self, light: bool = False, boot_s: float = Limits.boot_s):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cfg = {"parent": os.getpid(), "socket": theirs.fileno(), "path": list(_layout()[2]), "light": light}
        worker, proto = _sources()
        data = json.dumps({"worker": worker, "protocol": proto, "config": cfg}).encode()
        try:
            self.proc = start_process([sys.executable, "-I", "-S", "-B", "-c", BOOT], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_base_env(), cwd="/",
                                      pass_fds=(theirs.fileno(),), start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self.lock = threading.Lock()  # one conversation with the template at a time
        self.users, self.retired, self.ready, self.closed = 0, False, False, False
        self.error: str | None = None
        self.give_up = time.monotonic() + boot_s  # not ready by then: killed
        try:
            os.set_blocking(self.proc.stdin.fileno(), False)
            protocol.write_bytes(self.proc.stdin.fileno(), len(data).to_bytes(4, "big") + data, time.monotonic() + boot_s)
        except (OSError, TimeoutError) as exc:
            self.error = f"the worker template could not read its configuration ({type(exc).__name__})"
        finally:
            self.proc.stdin.close()

    # ------------------------------------------------------------------ the one of this process
    @classmethod
    def acquire(cls, deadline: float) -> "Template":
        """This process's template, started if need be and ready; release it with ``release``."""
        with cls._lock:
            template = cls._current
            if template is None or template.retired or template.proc.poll() is not None:
                if template is not None:
                    template._retire_locked()
                template = cls._current = cls()
            template.users += 1
        try:
            template.wait_ready(deadline)
        except BaseException:
            template.release()  # one that failed was retired; one still starting stays for the next worker
            raise
        return template

    @classmethod
    def prewarm(cls) -> None:
        """Start this process's template now, without waiting for it: its import of torch overlaps
        whatever the grader does until its first worker."""
        with cls._lock:
            if cls._current is None:
                cls._current = cls()

    @classmethod
    def shutdown(cls) -> None:
        """At exit: close this process's template (it would also die with the process)."""
        with cls._lock:
            template, cls._current = cls._current, None
        if template is not None:
            template.retire()

    def release(self) -> None:
        with Template._lock:
            self.users -= 1
            close = self.retired and self.users == 0
        if close:
            self.close()

    def retire(self) -> None:
        """Fork no more workers from this template; close it once no worker of it is in use."""
        with Template._lock:
            close = self._retire_locked()
        if close:
            self.close()

    def _retire_locked(self) -> bool:
        self.retired = True
        if Template._current is self:
            Template._current = None
        return self.users == 0

    @property
    def died(self) -> bool:
        """The template ended without being closed: its workers were killed for the grader's reasons."""
        return not self.closed and self.proc.poll() is not None

    # ------------------------------------------------------------------ talking to it
    def wait_ready(self, deadline: float) -> None:
        """Wait until the template has imported torch. Past ``deadline``, TemplateTimeout: the template
        goes on starting for the next worker, unless it failed or is not ready by ``give_up``: then it
        is killed and not used again."""
        with self.lock:
            if self.ready:
                return
            if self.error is None:
                try:
                    self.sock.settimeout(max(0.001, min(deadline, self.give_up) - time.monotonic()))
                    if self.sock.recv(64) == b'{"ready": true}':
                        self.ready = True
                        self.proc.stderr.close()
                        return
                    self.error = "the worker template stopped while it started"
                except TimeoutError:
                    if time.monotonic() < self.give_up:
                        raise TemplateTimeout("the worker template is still starting") from None
                    self.error = "the worker template did not start in time"
                except OSError as exc:
                    self.error = f"the worker template could not start ({exc})"
            self._kill()
            try:
                os.set_blocking(self.proc.stderr.fileno(), False)
                why = self.proc.stderr.read(4000) or b""
            except (OSError, ValueError):
                why = b""
            last = why.decode("utf-8", "replace").strip().splitlines()[-1:]  # the exception's own line
            why = clean_text(last[0], 300) if last else ""
            raise TemplateError(self.error + (f": {why}" if why else ""))

    def spawn(self, cfg: dict, fds: list[int], deadline: float) -> tuple[int, int]:
        """Fork a worker with ``cfg`` and the worker's ends of its pipes; (its pid, a pidfd of it)."""
        data = json.dumps(cfg).encode()
        with self.lock:
            if time.monotonic() > deadline:
                raise TemplateTimeout("no time left to start the worker")
            try:
                self.sock.settimeout(max(BIRTH_S, deadline - time.monotonic()))
                socket.send_fds(self.sock, [data], fds)
                reply, received, _flags, _address = socket.recv_fds(self.sock, 4096, 1)
            except OSError as exc:  # TimeoutError too: the template is stuck or gone
                self._kill()
                raise TemplateError(f"the worker template did not answer ({type(exc).__name__})") from None
        try:
            message = json.loads(reply) if reply else {}
        except ValueError:
            message = {}
        if isinstance(message.get("pid"), int) and len(received) == 1:
            return message["pid"], received[0]
        for fd in received:
            os.close(fd)
        if not reply:
            self._kill()
            raise TemplateError("the worker template stopped")
        raise TemplateError(f"the worker template could not fork a worker ({clean_text(message.get('error', reply), 300)})")

    def _kill(self) -> None:
        """A template that failed is not asked again; it is closed when its last user releases it."""
        with Template._lock:
            self._retire_locked()
        try:
            self.proc.kill()
        except OSError:
            pass

    def close(self) -> None:
        """Hang up (the template exits) and reap it."""
        self.closed = True
        self.sock.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr and not self.proc.stderr.closed:
            self.proc.stderr.close()


atexit.register(Template.shutdown)


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
    light = None  # a template without torch: the probe runs no notebook
    try:
        for mode in (["root"] if os.geteuid() == 0 else []) + ["user"]:
            try:
                light = light or Template(light=True)
                words = _probe(light, mode)
            except OSError:
                continue
            if words[:1] == ["sandbox-ok"]:
                _seccomp[mode] = words[1:] == ["seccomp-on"]
                return mode
    finally:
        if light is not None:
            light.retire()
    return "none"


def _probe(template: "Template", mode: str) -> list[str]:
    """The words a probe worker of ``mode`` prints (``sandbox-ok seccomp-on`` where the sandbox holds
    and hides this file), or none: the same birth, namespaces and root as every worker's."""
    worker = Worker([], Limits(), mode=mode)
    deadline = time.monotonic() + 60
    try:
        template.wait_ready(deadline)
        cfg = worker._prepare(cgroup=False)
        cfg.update(probe=True, probe_path=WORKER_SCRIPT)
        worker._launch(cfg, deadline, template)
        code = worker._exit_code(max(0.0, deadline - time.monotonic()))
        worker._drain.join(max(0.0, deadline - time.monotonic()))
        return worker.output.split() if code == 0 else []
    finally:
        worker.close()


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
            "tmpfs_mb": limits.tmpfs_mb, "uid": 200_000 + secrets.randbelow(60_000), "nproc": limits.nproc,
            "seccomp": seccomp_enabled(mode), "workdir": workdir, "wfd": wfd}


def _rlimits(limits: Limits) -> list[list[int]]:
    """The per-process limits a worker sets on itself before anything else runs in it."""
    return [[resource.RLIMIT_AS, limits.memory_mb << 20], [resource.RLIMIT_CPU, limits.cpu_s],
            [resource.RLIMIT_FSIZE, limits.file_mb << 20], [resource.RLIMIT_CORE, 0], [resource.RLIMIT_NOFILE, 256]]


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
            _hierarchy, controllers, path = line.rstrip("\n").split(":", 2)
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
            memory, pids = str(limits.memory_mb << 20), str(limits.nproc + 2)  # + the keeper and init
            if version == 1:
                pids_dir, memory_dir, _cpu_dir = group.dirs
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
        for _attempt in range(100):
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
    """One worker process tree running one submission, forked from this process's template. Use as
    a context manager."""

    def __init__(self, cells: list[dict], limits: Limits | None = None, mode: str | None = None):
        self.cells = cells
        self.limits = limits or Limits()
        self.mode = mode or sandbox_mode()
        self.cgroup: Cgroup | None = None
        self.cell_errors: list[dict] = []
        self.dead: str | None = None  # why the worker can no longer answer
        self.dead_kind = protocol.DEAD  # protocol.TIMEOUT when it was stopped for running too long
        self.boot_failed = False  # the grader's fault (overload, broken sandbox, a template that died), not the learner's
        self._output = bytearray()
        self._output_dropped = 0
        self._tmp: str | None = None
        self._template: Template | None = None
        self._acquired = False  # whether this worker counts as a user of its template
        self._req = self._rep = self._out = None  # the grader's ends of the pipes
        self._status: socket.socket | None = None  # the keeper's reports: init's pid, then how it ended
        self._keeper: int | None = None
        self._keeper_fd: int | None = None  # pidfds: a kill never reaches a recycled pid
        self._init_fd: int | None = None
        self._code: int | None = None  # init's exit code, as the keeper reported it
        self._drain: threading.Thread | None = None

    # ----------------------------------------------------------------- life cycle
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _prepare(self, cgroup: bool = True) -> dict:
        """The worker's folder (and cgroup); its configuration."""
        self._tmp = tempfile.mkdtemp(prefix="agw-")
        os.chmod(self._tmp, 0o755)
        root = os.path.join(self._tmp, "root")
        os.mkdir(root)
        workdir, env = "/sandbox", {}
        if self.mode == "none":
            workdir = os.path.join(self._tmp, "work")
            os.mkdir(workdir)
            os.chmod(workdir, 0o777)
            env = {"HOME": workdir, "TMPDIR": workdir}
        if cgroup and cgroup_support():
            self.cgroup = Cgroup.create(self.limits)
        cfg = _config(self.mode, root, workdir, 3, self.limits)
        cfg.update(cgroup=self.cgroup.dirs if self.cgroup else [], cwd=self._tmp, rlimits=_rlimits(self.limits), env=env)
        return cfg

    def _launch(self, cfg: dict, deadline: float, template: "Template | None" = None) -> None:
        """Have the template fork the worker; hold the grader's ends of its pipes and pidfds of its
        keeper and init. Raises OSError (TemplateError) when that fails: the grader's problem."""
        req_r, self._req = os.pipe()
        self._rep, rep_w = os.pipe()
        self._out, out_w = os.pipe()
        self._status, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            if template is None:
                template = Template.acquire(deadline)
                self._acquired = True
            self._template = template
            self._keeper, self._keeper_fd = template.spawn(cfg, [req_r, rep_w, out_w, theirs.fileno()], deadline)
        finally:
            for fd in (req_r, rep_w, out_w):
                os.close(fd)
            theirs.close()
        os.set_blocking(self._req, False)  # every write has a deadline: a worker that stops reading cannot hang us
        self._drain = threading.Thread(target=self._drain_output, daemon=True)
        self._drain.start()
        try:
            message, fds = self._report(deadline)
        except TimeoutError:
            raise TemplateTimeout("the worker did not enter its sandbox in time") from None
        if len(fds) != 1 or not isinstance(message.get("init"), int):
            for fd in fds:
                os.close(fd)
            self._drain.join(1)
            last = self.output.strip().splitlines()[-1:]  # the keeper's exception, if it printed one
            raise TemplateError("the worker's sandbox could not be entered" + (f": {clean_text(last[0], 300)}" if last else ""))
        self._init_fd = fds[0]

    def _report(self, deadline: float) -> tuple[dict, list[int]]:
        """The keeper's next message ({} when it ended); TimeoutError past ``deadline``."""
        if self._status is None or self._status.fileno() < 0:
            return {}, []
        try:
            self._status.settimeout(max(0.001, deadline - time.monotonic()))
            data, fds, _flags, _address = socket.recv_fds(self._status, 4096, 1)
        except TimeoutError:
            raise
        except OSError:
            return {}, []
        try:
            message = json.loads(data) if data else {}
        except ValueError:
            message = {}
        return (message if isinstance(message, dict) else {}), fds

    def _exit_code(self, seconds: float) -> int | None:
        """Init's exit code (128 + n when a signal n killed the learner's process; -n when a signal
        killed init), waiting up to ``seconds`` for the keeper to report it."""
        if self._code is None:
            try:
                message, fds = self._report(time.monotonic() + seconds)
            except TimeoutError:
                return None
            for fd in fds:
                os.close(fd)
            if isinstance(message.get("status"), int):
                self._code = message["status"]
        return self._code

    def start(self) -> None:
        cells = {c["index"] for c in self.cells}
        code_bytes = sum(len(c["source"].encode("utf-8", "surrogatepass")) for c in self.cells)
        if code_bytes > protocol.MAX_JSON_BYTES // 2:
            self.dead, self.dead_kind = _("the notebook's code cells hold {size} MB of text, more than the "
                                          "{limit} MB a grading worker accepts", size=code_bytes >> 20,
                                          limit=protocol.MAX_JSON_BYTES >> 21), protocol.UNREADABLE
            return
        deadline = time.monotonic() + self.limits.boot_s
        try:
            self._launch(self._prepare(), deadline)
        except TemplateTimeout:
            self.boot_failed = True
            self._fail(_("the grading worker did not start within {seconds:g} s (not your fault: the machine is overloaded)",
                         seconds=self.limits.boot_s))
            return
        except OSError as exc:  # no worker: the grader's problem
            self.boot_failed = True
            self._fail(_("the grading worker could not start (not your fault; tell the course staff): {error}",
                         error=str(exc)))
            return
        current, booted = None, False
        try:
            protocol.write_message(self._req, {"op": "run", "cells": self.cells}, deadline=deadline)
            while True:
                header, _tensors = protocol.read_message(self._rep, deadline, max_blob=0)
                if not booted:
                    if header != {"progress": None}:
                        raise protocol.ProtocolError("the worker did not announce itself")
                    # The notebook's own time starts once the learner's process is up.
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
                self._fail(_("the grading worker did not start within {seconds:g} s (not your fault: the machine is overloaded)",
                         seconds=self.limits.boot_s))
                return
            if current is None:
                self._fail(_("the notebook did not finish running within {seconds:g} s", seconds=self.limits.startup_s),
                           protocol.TIMEOUT)
            else:
                self._fail(_("the notebook did not finish running within {seconds:g} s (it was still running cell "
                             "{cell}: an infinite loop?)", seconds=self.limits.startup_s, cell=current), protocol.TIMEOUT)
        except (EOFError, protocol.ProtocolError, OSError) as exc:
            # Before the first message no learner code has run: a failure then is the grader's.
            self.boot_failed = not booted
            self._fail(self._ended(_("while the notebook ran") if current is None else
                                   _("while the notebook ran (cell {cell})", cell=current), exc))

    def _drain_output(self):
        cap = self.limits.output_kb << 10
        while True:
            try:
                chunk = os.read(self._out, 1 << 16)
            except OSError:
                return
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

    def _kill(self):
        """Kill the whole tree: init (which takes its pid namespace with it; its keeper then reports
        and exits), in mode none the process group, then whatever is still in the cgroup (frozen,
        then killed)."""
        if self.mode == "none" and self._keeper_fd is not None and not _exited(self._keeper_fd, 0):
            try:
                os.killpg(self._keeper, signal.SIGKILL)  # the keeper's session: init, the learner, their group
            except (ProcessLookupError, PermissionError):
                pass
        if self._init_fd is not None and not _exited(self._init_fd, 0):
            _kill_pidfd(self._init_fd)
            _exited(self._init_fd, 5)
        if self._keeper_fd is not None and not _exited(self._keeper_fd, 5):  # it reports init's end, then exits
            _kill_pidfd(self._keeper_fd)
            _exited(self._keeper_fd, 5)
        if self.cgroup and self.cgroup.pids():  # none left when the pid namespace did its work
            self.cgroup.kill()

    def _ended(self, when: Message, exc: BaseException) -> Message:
        if isinstance(exc, EOFError):
            self._exit_code(2)  # the learner's process ended: let init report how before anything is killed
        self._kill()
        code = self._exit_code(1)
        if self._template is not None and self._template.died:
            self.boot_failed = True  # its death killed this worker: not the learner's doing
            return _("the grading worker's template stopped (not your fault; tell the course staff)")
        if isinstance(exc, Malformed):
            return _("the notebook's process sent the grader {what} {when}: "
                     "a notebook must not write to the grader's pipes", what=str(exc), when=when)
        if isinstance(exc, protocol.ProtocolError):
            return _("the notebook's process sent a malformed reply {when}: {error}", when=when, error=str(exc))
        if code is None:
            return _("the worker stopped answering {when}", when=when)
        if code > 128:  # init reports a signal that killed the learner's process as 128 + n
            code = 128 - code
        if code < 0:
            name = SIGNAL_NAMES.get(-code, f"signal {-code}")
            return _("the notebook's process was killed by {signal} {when}", signal=name, when=when)
        if code == 0 and "MemoryError" in self.output:
            return _("the notebook's process ran out of memory {when}", when=when)
        return _("the notebook's process exited (exit code {code}) {when}; os._exit or sys.exit?", code=code, when=when)

    def _fail(self, message: str, kind: str = protocol.DEAD) -> None:
        self._kill()
        self.dead, self.dead_kind = message, kind
        if self._template is not None:
            self._template.retire()  # a template is not used again after a worker of it misbehaved

    def close(self) -> None:
        self._kill()
        for fd in (self._req, self._rep, self._init_fd, self._keeper_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._req = self._rep = self._init_fd = self._keeper_fd = None
        if self._status is not None:
            self._status.close()
        if self._out is not None:
            if self._drain is not None:
                self._drain.join(1)  # every writer is dead: the output ends
            if self._drain is None or not self._drain.is_alive():  # else a detached survivor holds it (mode none)
                os.close(self._out)
            self._out = None
        if self._acquired:
            self._acquired = False
            self._template.release()
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
            self._fail(_("{label} did not return within {seconds:g} s (an infinite loop, "
                         "or the notebook's process stopped reading?)", label=label, seconds=self.limits.call_s),
                       protocol.TIMEOUT)
            raise WorkerError(self.dead, protocol.TIMEOUT) from None
        except (EOFError, OSError, protocol.ProtocolError) as exc:
            self._fail(self._ended(_("during {label}", label=label), exc))
            raise WorkerError(self.dead, protocol.DEAD) from None
        if not reply["ok"]:
            raise WorkerError.from_reply(reply)
        try:
            return protocol.decode(reply.get("value"), out)
        except protocol.ProtocolError as exc:
            raise WorkerError(_("{label} returned something that could not be read: {error}", label=label, error=str(exc)),
                              protocol.PROTOCOL) from None

    def call(self, target, *args, method: str | None = None, keep: bool = False, label: str | None = None, **kwargs):
        structure, tensors = protocol.encode([list(args), kwargs])
        label = label or (f"`{target}`" if isinstance(target, str) else repr(target))
        header = {"op": "call", "target": target.ident if isinstance(target, protocol.Handle) else target,
                  "method": method, "keep": keep, "label": label,
                  "args": structure[0], "kwargs": structure[1]}
        return self.request(header, tensors, label=label)

    def get(self, name: str):
        return self.request({"op": "get", "name": name}, label=f"reading `{name}`")
