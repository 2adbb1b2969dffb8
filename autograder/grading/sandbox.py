"""The trusted side of a worker: start it with limits, talk to it, kill it.

Isolation, strongest first (``sandbox_mode()`` picks the best that works on this machine):

``root``   the grader runs as root: ``unshare --mount --net --pid --ipc --uts`` and the worker
           pivots into a minimal read-only root (system, interpreter, venv only; the course
           package hidden), then switches to a random unprivileged uid. It cannot read the
           repository, the solutions, the checks, other submissions or the gradebook, cannot
           write anywhere but its own tmpfs, has no network, and ``RLIMIT_NPROC`` holds.
``user``   the grader is an ordinary user: the same, inside a user namespace
           (``unshare --user --map-root-user``), with every capability dropped.
``none``   namespaces are not available: a fresh temporary folder, a scrubbed environment,
           ``python -I``, the resource limits, and (as root) an unprivileged uid. The worker could
           then still read world-readable files: prefer a machine where ``unshare`` works.

Limits always set by the parent: wall-clock timeouts enforced with SIGKILL of the whole process
group (and, with a pid namespace, of everything the worker forked), RLIMIT_AS, RLIMIT_CPU,
RLIMIT_FSIZE, RLIMIT_CORE=0, RLIMIT_NOFILE, RLIMIT_NPROC (as root, where the worker has a uid of its
own); output kept up to a cap and ignored.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import re
import time

from .. import protocol
from ..protocol import Limits

WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")
SIGNAL_NAMES = {
    signal.SIGSEGV: "a segmentation fault", signal.SIGKILL: "SIGKILL (time or memory limit)",
    signal.SIGXCPU: "the CPU-time limit", signal.SIGXFSZ: "the file-size limit",
    signal.SIGABRT: "an abort", signal.SIGBUS: "a bus error", signal.SIGFPE: "a floating-point trap",
}


TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


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
            return cls("the worker sent a malformed reply (an unknown kind of error)", protocol.PROTOCOL)
        message = str(reply.get("error", "unknown error"))[:1000]
        if kind != protocol.RAISED:
            return cls(message, kind)
        names = reply.get("error_types")
        names = [n for n in names[:32] if isinstance(n, str) and TYPE_NAME.fullmatch(n)] if isinstance(names, list) else []
        error_type = reply.get("error_type")
        error_type = error_type if isinstance(error_type, str) and TYPE_NAME.fullmatch(error_type) else None
        return cls(message, kind, error_type, tuple(names))


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


def _binds() -> list[str]:
    """Paths the worker needs to see (read-only): the system, the interpreter and the venv."""
    paths = ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin",
             "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"]
    # Of /etc only what the dynamic loader and the C library read: no shadow, no host config.
    paths += [p for p in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/passwd", "/etc/group",
                          "/etc/nsswitch.conf", "/etc/localtime", "/etc/hosts", "/etc/mime.types") if os.path.exists(p)]
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    for prefix in sorted(prefixes):
        real = os.path.realpath(prefix)
        for p in {prefix, real}:
            if not any(p == b or p.startswith(b.rstrip("/") + "/") for b in paths if not b.startswith(("/dev", "/etc"))):
                paths.append(p)
    exe = os.path.realpath(sys.executable)
    if not any(exe.startswith(b + "/") for b in paths):
        paths.append(os.path.dirname(exe))
    return paths


# Every package of the course: the library (with its training code and course helpers) and the grader.
COURSE_PACKAGES = ("attnlab", "autograder")


def _hidden(binds: list[str]) -> list[str]:
    """The course packages, where an installed copy lies inside a bound folder: mask them."""
    hide = []
    for package in COURSE_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            real = os.path.realpath(location)
            if any(real.startswith(b.rstrip("/") + "/") for b in binds) and real not in hide:
                hide.append(real)
    return hide


def _unshare_cmd(mode: str) -> list[str]:
    base = ["unshare", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child"]
    return base + (["--user", "--map-root-user"] if mode == "user" else []) + ["--"]


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
            cfg = _config(mode, os.path.join(tmp, "root"), "/sandbox", -1, -1, Limits())
            cfg["probe"] = True
            out = subprocess.run(_command(mode, cfg), capture_output=True, text=True, timeout=60,
                                 env=_base_env(), cwd=tmp, start_new_session=True)
            if out.returncode == 0 and out.stdout.strip() == "sandbox-ok":
                return mode
        except (OSError, subprocess.SubprocessError):
            pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return "none"


def _config(mode: str, root: str, workdir: str, rfd: int, wfd: int, limits: Limits) -> dict:
    binds = _binds()
    return {"sandbox": mode, "root": root, "binds": binds, "hide": _hidden(binds),
            "tmpfs_mb": limits.tmpfs_mb, "uid": random.randint(200_000, 260_000),
            "workdir": workdir, "rfd": rfd, "wfd": wfd}


def _command(mode: str, cfg: dict) -> list[str]:
    cmd = [sys.executable, "-I", "-B", WORKER_SCRIPT, json.dumps(cfg)]
    return cmd if mode == "none" else _unshare_cmd(mode) + cmd


class Worker:
    """One worker process running one submission. Use as a context manager."""

    def __init__(self, cells: list[dict], limits: Limits | None = None, mode: str | None = None):
        self.cells = cells
        self.limits = limits or Limits()
        self.mode = mode or sandbox_mode()
        self.proc: subprocess.Popen | None = None
        self.cell_errors: list[dict] = []
        self.dead: str | None = None  # why the worker can no longer answer
        self.dead_kind = protocol.DEAD  # protocol.TIMEOUT when it was stopped for running too long
        self.boot_failed = False  # the grader's fault (overload, broken sandbox), not the learner's
        self._output = bytearray()
        self._output_dropped = 0
        self._tmp: str | None = None

    # ----------------------------------------------------------------- life cycle
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _preexec(self):
        lim = self.limits
        mem = lim.memory_mb << 20
        limits = [(resource.RLIMIT_AS, mem), (resource.RLIMIT_CPU, lim.cpu_s),
                  (resource.RLIMIT_FSIZE, lim.file_mb << 20), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 256)]
        if os.geteuid() == 0:
            # Counted per uid: only meaningful when the worker gets a uid of its own (grader as root).
            # For an ordinary grader it would count all of that user's processes and threads.
            limits.append((resource.RLIMIT_NPROC, lim.nproc))
        for res, value in limits:
            resource.setrlimit(res, (value, value))

    def start(self) -> None:
        self._tmp = tempfile.mkdtemp(prefix="agw-")
        os.chmod(self._tmp, 0o755)
        root = os.path.join(self._tmp, "root")
        os.mkdir(root)
        workdir = "/sandbox"
        if self.mode == "none":
            workdir = os.path.join(self._tmp, "work")
            os.mkdir(workdir)
            os.chmod(workdir, 0o777)
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        cmd = _command(self.mode, _config(self.mode, root, workdir, req_r, rep_w, self.limits))
        env = _base_env()
        if self.mode == "none":
            env.update(HOME=workdir, TMPDIR=workdir)
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=self._tmp, env=env, pass_fds=(req_r, rep_w), start_new_session=True,
                preexec_fn=self._preexec, close_fds=True)
        finally:
            os.close(req_r)
            os.close(rep_w)
        self._req, self._rep = req_w, rep_r
        self._drain = threading.Thread(target=self._drain_output, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + self.limits.boot_s
        current, booted = None, False
        try:
            protocol.write_message(self._req, {"op": "run", "cells": self.cells})
            while True:
                header, _ = protocol.read_message(self._rep, deadline, max_blob=0)
                if not booted:
                    # The notebook's own time starts once the worker is up (torch imported).
                    booted, deadline = True, time.monotonic() + self.limits.startup_s
                if "progress" in header:
                    current = header["progress"]
                    continue
                if header.get("ready"):
                    self.cell_errors = [e for e in header.get("errors", []) if isinstance(e, dict)][:50]
                    return
                raise protocol.ProtocolError("unexpected message while the notebook ran")
        except TimeoutError:
            if not booted:
                self.boot_failed = True
                self._fail(f"the grading worker did not start within {self.limits.boot_s:g} s (not your fault: the machine is overloaded)")
                return
            self._fail(f"the notebook did not finish running within {self.limits.startup_s:g} s"
                       + (f" (it was still running cell {current}: an infinite loop?)" if current is not None else ""),
                       protocol.TIMEOUT)
        except (EOFError, BrokenPipeError, protocol.ProtocolError, OSError) as exc:
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

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def _ended(self, when: str, exc: BaseException) -> str:
        self._kill()
        code = self.proc.returncode if self.proc else None
        if isinstance(exc, protocol.ProtocolError):
            return f"the worker sent a malformed reply {when}: {exc}"
        if code is None:
            return f"the worker stopped answering {when}"
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
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # ----------------------------------------------------------------- requests
    def request(self, header: dict, tensors: dict | None = None, label: str = "the call"):
        """Send one request; return the decoded value or raise WorkerError."""
        if self.dead:
            raise WorkerError(self.dead, self.dead_kind)
        deadline = time.monotonic() + self.limits.call_s
        try:
            protocol.write_message(self._req, header, tensors)
            reply, out = protocol.read_message(self._rep, deadline, max_blob=self.limits.max_reply_mb << 20)
        except TimeoutError:
            self._fail(f"{label} did not return within {self.limits.call_s:g} s (an infinite loop?)", protocol.TIMEOUT)
            raise WorkerError(self.dead, protocol.TIMEOUT) from None
        except (EOFError, BrokenPipeError, OSError, protocol.ProtocolError) as exc:
            self._fail(self._ended(f"during {label}", exc))
            raise WorkerError(self.dead, protocol.DEAD) from None
        if not reply.get("ok"):
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
