"""The untrusted side: a template that forks one process tree per learner's notebook, and what runs in it.

Started by ``autograder.grading.sandbox``; its command line holds no configuration: a ten-line boot
program (``sandbox.BOOT``) reads this file's source, ``protocol.py``'s source and the configuration
from a pipe and runs ``main``. Four kinds of process follow:

**the template** (one per grading process, ``template_main``) imports torch and numpy once, then
waits for birth requests on a socket from the grader: a worker's configuration and the worker's
ends of its pipes. It never runs learner code, never enters a namespace, stays single-threaded and
forks each worker; it dies with the grader (a parent-death signal, and the hang-up of the socket).
The grader stops using it after any worker it forked misbehaved.

**the keeper** (the forked child, ``be_born`` then ``keep``) stands where ``unshare --fork
--kill-child`` used to: it joins the worker's cgroup first, takes the pipes at fixed numbers and
closes every other descriptor, sets the resource limits, enters new mount, network, pid, ipc, uts
and cgroup namespaces (and a user namespace in user mode) itself, forks init, tells the grader
init's pid (with a pidfd, so that a kill can never reach a recycled pid) and, when init ends, how.
It dies with the template (parent-death signal) and kills init when the grader hangs up.

**init** (pid 1 of the new pid namespace) has a parent-death signal on the keeper, which it never
loses because it never changes its credentials, and

1. builds a new root file system from a tmpfs holding read-only bind mounts of only what Python
   and PyTorch need (the system, the interpreter, the virtual environment), with every installed
   copy of the course (reference, checks, the distribution's metadata) masked, then ``pivot_root``s
   into it and detaches the old root, so the solutions, hidden tests, other submissions and the
   gradebook are simply not there;
2. forks the learner's process and waits for it. It also exits when the grader's end of the
   request pipe closes: when the grader dies, init dies, and the kernel kills every process of the
   namespace with it, whatever they did (``setsid``, double forks).

**the learner's process** drops privileges (as host root: a random unprivileged uid, so
``RLIMIT_NPROC`` holds and no file outside is writable; in a user namespace: every capability,
with ``RLIMIT_NPROC`` counted inside that namespace), re-arms its parent-death signal (the uid
change clears it), installs a seccomp filter (``seccomp_program``) and only then executes the
notebook's code cells (sent by the grader; test cells are never sent) and serves requests: call a
function, instantiate a class, call a method of a kept object, read a variable. Replies are plain
data, a failure named by one of the error kinds of ``protocol`` (an exception of the learner's by
its type names too). Nothing here decides a score.

This file imports nothing from the project; it receives ``protocol.py`` as source text. Nothing of
the course is imported into the template, so nothing of it is in a learner's ``sys.modules``.
"""
from __future__ import annotations

import builtins
import contextlib
import ctypes
import fcntl
import gc
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import traceback
import types

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

# ---------------------------------------------------------------------------------- seccomp
# What a notebook never needs, denied with EPERM: new namespaces (unshare, setns, clone with a
# CLONE_NEW* flag), mounts, kernel-facing interfaces with a history of exploits (bpf, io_uring,
# userfaultfd, perf events, keys), reading or writing other processes (ptrace, process_vm_*),
# and administration (modules, kexec, reboot, swap, clocks). clone3 gets ENOSYS, as in Docker's
# profile: its flags sit in memory a filter cannot read, and the C library then falls back to clone.
# Numbers: {name: (x86_64, aarch64)}, None where the architecture has no such call
# (tests/test_grading_isolation.py checks them against libseccomp where it is installed).
DENIED = {
    "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40), "umount2": (166, 39),
    "pivot_root": (155, 41), "chroot": (161, 51), "move_mount": (429, 429), "open_tree": (428, 428),
    "open_tree_attr": (467, 467), "fsopen": (430, 430), "fsconfig": (431, 431), "fsmount": (432, 432),
    "fspick": (433, 433), "mount_setattr": (442, 442), "bpf": (321, 280), "perf_event_open": (298, 241),
    "userfaultfd": (323, 282), "io_uring_setup": (425, 425), "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427), "ptrace": (101, 117), "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271), "pidfd_getfd": (438, 438), "keyctl": (250, 219), "add_key": (248, 217),
    "request_key": (249, 218), "kexec_load": (246, 104), "kexec_file_load": (320, 294),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106), "reboot": (169, 142),
    "swapon": (167, 224), "swapoff": (168, 225), "acct": (163, 89), "syslog": (103, 116),
    "quotactl": (179, 60), "quotactl_fd": (443, 443), "name_to_handle_at": (303, 264),
    "open_by_handle_at": (304, 265), "lookup_dcookie": (212, 18), "uselib": (134, None),
    "ioperm": (173, None), "iopl": (172, None), "vhangup": (153, 58), "clock_settime": (227, 112),
    "settimeofday": (164, 170), "adjtimex": (159, 171), "clock_adjtime": (305, 266),
    "fanotify_init": (300, 262),
}
CLONE, CLONE3, SECCOMP = {"x86_64": 56, "aarch64": 220}, 435, {"x86_64": 317, "aarch64": 277}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# CLONE_NEWTIME | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
CLONE_NEW_FLAGS = 0x80 | 0x20000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
EPERM, ENOSYS = 1, 38
RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The classic-BPF filter as (code, jump if true, jump if false, k) for ``machine``.

    Reads the architecture (another one, e.g. 32-bit calls on x86_64, kills the process), then the
    call number; clone is allowed unless its flags (args[0], low word) ask for a namespace."""
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    index = 0 if machine == "x86_64" else 1
    code: list[tuple] = [(ld, 0, 0, 4), (jeq, 0, "kill", AUDIT_ARCH[machine]), (ld, 0, 0, 0)]
    if machine == "x86_64":
        code.append((jge, "eperm", 0, 0x40000000))  # the x32 ABI: the same calls under other numbers
    code += [(jeq, "clone", 0, CLONE[machine]), (jeq, "enosys", 0, CLONE3)]
    code += [(jeq, "eperm", 0, numbers[index]) for numbers in DENIED.values() if numbers[index] is not None]
    code.append((ret, 0, 0, RET_ALLOW))
    labels = {"eperm": len(code), "enosys": len(code) + 1, "kill": len(code) + 2, "clone": len(code) + 3}
    code += [(ret, 0, 0, RET_ERRNO | EPERM), (ret, 0, 0, RET_ERRNO | ENOSYS), (ret, 0, 0, RET_KILL_PROCESS),
             (ld, 0, 0, 16), (jset, 1, 0, CLONE_NEW_FLAGS), (ret, 0, 0, RET_ALLOW), (ret, 0, 0, RET_ERRNO | EPERM)]
    out = []
    for i, (op, jt, jf, k) in enumerate(code):
        jt, jf = (labels[j] - i - 1 if isinstance(j, str) else j for j in (jt, jf))
        assert 0 <= jt < 256 and 0 <= jf < 256  # classic BPF jumps forward only, at most 255
        out.append((op, jt, jf, k))
    return out


def install_seccomp() -> None:
    """Install the filter on every thread of this process (needs no_new_privs, set before)."""
    machine = os.uname().machine
    program = seccomp_program(machine)
    buffer = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *ins) for ins in program))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Prog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    libc = _libc()
    # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)
    _check(libc.syscall(SECCOMP[machine], 1, 1, ctypes.byref(prog)), "seccomp")


# ---------------------------------------------------------------------------------- the sandbox
def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc, source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source} on {target}")


def build_root(cfg: dict) -> None:
    """Make a minimal read-only view of the file system and pivot into it."""
    libc = _libc()
    root = cfg["root"]
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    # The private /tmp and /sandbox first: a venv that lives under /tmp (a CI clone, say) is then
    # bound inside the new /tmp instead of being hidden by it.
    for name, mode in (("sandbox", 0o777), ("tmp", 0o1777)):
        os.makedirs(f"{root}/{name}", exist_ok=True)
        _mount(libc, "tmpfs", f"{root}/{name}", "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={cfg['tmpfs_mb']}m,mode={mode:o}")
    for path in cfg["binds"]:
        if os.path.islink(path) and os.path.dirname(path) == "/":
            # /lib -> usr/lib style links at the top level: recreate the link.
            os.symlink(os.readlink(path), root + path)
            continue
        if not os.path.exists(path):
            continue
        target = root + path
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        _mount(libc, path, target, None, MS_BIND | MS_REC)
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        if not path.startswith("/dev/"):
            flags |= MS_NODEV
        _mount(libc, None, target, None, flags)
    # Folders made inside the private /tmp or /sandbox to hold a bind (a venv under /tmp): read-only,
    # so the notebook cannot write beside what looks like a host path, even in its own tmpfs.
    for path in cfg["binds"]:
        parent = os.path.dirname(path)
        while parent.count("/") > 1 and parent.split("/")[1] in ("tmp", "sandbox"):
            with contextlib.suppress(OSError):  # a folder inside another (read-only) bind is read-only already
                os.chmod(root + parent, 0o555)
            parent = os.path.dirname(parent)
    for path in cfg["hide"]:  # a course package or its metadata: an empty folder or an empty file
        if os.path.isdir(root + path):
            _mount(libc, "tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=555")
        elif os.path.exists(root + path):
            _mount(libc, "/dev/null", root + path, None, MS_BIND)  # reads as empty (nodev would refuse to open it)
            _mount(libc, None, root + path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
    os.makedirs(f"{root}/proc", exist_ok=True)
    _mount(libc, "proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    old = f"{root}/.oldroot"
    os.makedirs(old, exist_ok=True)
    machine = os.uname().machine
    _check(libc.syscall(SYS_PIVOT_ROOT[machine], root.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    _check(libc.umount2(b"/.oldroot", MNT_DETACH), "umount old root")
    os.rmdir("/.oldroot")
    _mount(libc, None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def drop_privileges(cfg: dict) -> None:
    """Give up every privilege, then re-arm the parent-death signal (a uid change clears it)."""
    libc = _libc()
    parent = os.getppid()
    if cfg["sandbox"] == "root" or (cfg["sandbox"] == "none" and os.getuid() == 0 and cfg.get("uid")):
        uid = cfg["uid"]
        # Counted per uid: this worker's uid is its own, so the limit is this tree's.
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg["nproc"], cfg["nproc"]))
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # leaving uid 0 clears every capability
    elif cfg["sandbox"] == "user":
        # Since Linux 5.14 processes are counted per user namespace: this one holds only this tree.
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg["nproc"], cfg["nproc"]))
        for cap in range(64):
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                        ("inheritable", ctypes.c_uint32)]

        _check(libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # init died before the signal was armed again
        os._exit(1)


def strip_magics(source: str) -> str:
    """Comment out IPython magics and shell escapes: this is plain Python."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append(("# " + line) if stripped.startswith(("%", "!")) else line)
    return "\n".join(lines)


def load_protocol(source: str):
    """``autograder/protocol.py`` from its source text (it imports nothing from the project): the
    course package itself is never imported here, and is not even visible once the sandbox is built."""
    if "protocol" not in sys.modules:
        module = types.ModuleType("protocol")
        sys.modules["protocol"] = module  # before running it: dataclasses look their module up
        exec(compile(source, "protocol.py", "exec"), module.__dict__)
    return sys.modules["protocol"]


# ---------------------------------------------------------------------------------- init
def run_init(cfg: dict, learner) -> None:
    """Fork the learner's process and wait for it; exit with its status (128 + signal number when a
    signal killed it). Also exit as soon as the grader's end of the request pipe (fd 0) closes.
    As pid 1 of a pid namespace, exiting takes every process of the namespace with it."""
    _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # its /proc files stay root's
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that a child's exit wakes the poll
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(wake_r)
        os.close(wake_w)
        code = 1
        try:
            learner()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - the sandbox could not be entered: say why in the output
            traceback.print_exc()
        finally:
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    with contextlib.suppress(OSError):
        os.close(cfg["wfd"])  # the replies are the learner process's alone
    poller = select.poll()
    poller.register(0, 0)  # no events asked: poll still reports the hang-up of the grader's end
    poller.register(wake_r, select.POLLIN)
    while True:
        for fd, events in poller.poll():
            if fd == 0 and events & (select.POLLHUP | select.POLLERR):
                os._exit(1)
            if fd == wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
        while True:  # reap every child that ended: the learner's process and orphans left to pid 1
            try:
                child, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if child == 0:
                break
            if child == pid:
                code = os.waitstatus_to_exitcode(status)
                os._exit(128 - code if code < 0 else code & 0xFF)


# ---------------------------------------------------------------------------------- the learner
def serve(cfg: dict, rfd: int, wfd: int) -> None:
    import torch

    protocol = sys.modules["protocol"]
    torch.set_num_threads(1)
    header, _tensors = protocol.read_message(rfd)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    pristine = dict(builtins.__dict__)

    def restore_builtins():
        # Learner code may replace builtins (isinstance, len, ...) that this loop relies on.
        for name in [n for n in builtins.__dict__ if n not in pristine]:
            del builtins.__dict__[name]
        builtins.__dict__.update(pristine)

    errors = []
    protocol.write_message(wfd, {"progress": None})  # up and running: the notebook's clock starts
    for cell in header.get("cells", []):
        protocol.write_message(wfd, {"progress": cell["index"]})
        try:
            code = compile(strip_magics(cell["source"]), f"<cell {cell['index']}>", "exec")
            exec(code, namespace)
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt too
            restore_builtins()
            errors.append({"cell": cell["index"], "error": protocol.describe_error(exc)})
        restore_builtins()
    protocol.write_message(wfd, {"ready": True, "errors": errors})

    handles: dict[int, object] = {}
    while True:
        try:
            request, tensors = protocol.read_message(rfd)
        except EOFError:
            return
        reply = handle(request, tensors, namespace, handles, protocol, restore_builtins)
        restore_builtins()
        try:
            structure, out = protocol.encode(reply.pop("value", None))
            reply["value"] = structure
            protocol.write_message(wfd, reply, out)
        except BaseException as exc:  # noqa: BLE001
            protocol.write_message(wfd, {"ok": False, "kind": protocol.UNSUPPORTED,
                                         **_("the result could not be sent back: {error}",
                                             error=protocol.describe_error(exc))})


def _(template: str, **params) -> dict:
    """A failed reply's message: its English text ("error") and, as ``attnlab.course.messages.Message.to_json``
    writes it, its template and parameters ("message"), which the trusted side translates. The worker
    cannot import the course library (the sandbox hides it) and never needs the catalogues; the
    template is a constant, extracted with the others by ``python tools/i18n.py messages``."""
    return {"error": template.format(**params), "message": {"template": template, "params": params}}


def handle(request, tensors, namespace, handles, protocol, restore_builtins) -> dict:
    op = request.get("op")
    try:
        if op == "get":
            name = request["name"]
            if name not in namespace:
                return {"ok": False, "kind": protocol.MISSING, **_("the notebook does not define `{name}`", name=name)}
            return {"ok": True, "value": namespace[name]}
        if op != "call":
            return {"ok": False, "kind": protocol.PROTOCOL, **_("unknown request {op}", op=repr(op))}
        target = request["target"]
        if isinstance(target, str):
            if target not in namespace:
                return {"ok": False, "kind": protocol.MISSING, **_("the notebook does not define `{name}`", name=target)}
            obj = namespace[target]
        else:
            obj = handles[int(target)]
        method = request.get("method")
        if method:
            if method.startswith("_") and method not in ("__call__",):
                return {"ok": False, "kind": protocol.PROTOCOL, **_("private methods cannot be called")}
            if not hasattr(obj, method):
                return {"ok": False, "kind": protocol.MISSING,
                        **_("`{label}` has no method `{method}`", label=str(request.get("label", target)), method=method)}
            obj = getattr(obj, method)
        if not callable(obj):
            return {"ok": False, "kind": protocol.MISSING,
                    **_("`{label}` is not a function or class", label=str(request.get("label", target)))}
        args = protocol.decode(request.get("args", []), tensors)
        kwargs = protocol.decode(request.get("kwargs", {"$dict": {}}), tensors)
        args = [handles[a.ident] if isinstance(a, protocol.Handle) else a for a in args]
        result = obj(*args, **kwargs)
        if request.get("keep"):
            ident = len(handles) + 1
            handles[ident] = result
            return {"ok": True, "value": protocol.Handle(ident, type(result).__name__)}
        return {"ok": True, "value": result}
    except BaseException as exc:  # noqa: BLE001
        restore_builtins()
        return protocol.raised_reply(exc)


def learner_main(cfg: dict) -> None:
    """The learner's process: fds in place, privileges dropped, filter installed, then the notebook."""
    rfd = os.dup(0)  # the request pipe; stdin becomes /dev/null, so input() cannot eat requests
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    drop_privileges(cfg)
    if cfg["seccomp"]:
        install_seccomp()
    if cfg.get("probe"):  # sandbox_mode() asks whether this machine can build the sandbox
        hidden = not os.path.exists(cfg["probe_path"])  # this file, seen from the sandbox
        print("sandbox-ok" if hidden or cfg["sandbox"] == "none" else "sandbox-leaky",
              "seccomp-on" if cfg["seccomp"] else "seccomp-off", flush=True)
        return
    os.chdir(cfg["workdir"])
    os.umask(0o077)
    serve(cfg, rfd, cfg["wfd"])


# What the learner's process needs of the configuration: no host path but its working folder.
LEARNER_CONFIG = ("sandbox", "uid", "nproc", "seccomp", "workdir", "wfd", "probe", "probe_path")


def become_init(cfg: dict) -> None:
    """Init of the worker's pid namespace: the sandbox, then the learner's process (never returns)."""
    if cfg["sandbox"] in ("root", "user"):
        build_root(cfg)
    for key in [k for k in cfg if k not in LEARNER_CONFIG]:
        del cfg[key]  # in place: the learner's process keeps no host path
    run_init(cfg, lambda: learner_main(cfg))


# ---------------------------------------------------------------------------------- the template
MAX_BIRTH_BYTES = 1 << 16  # a birth request: one worker's configuration, as JSON
BIRTH_FDS = 4  # with it, the worker's ends of its pipes: requests, replies, output, status
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x02000000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
NAMESPACES = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP
SYS_CLOSE_RANGE = 436  # the same number on x86_64 and aarch64 (Linux >= 5.9)


def _die_with(libc, parent: int) -> None:
    """SIGKILL when ``parent`` dies; exit now if it already has."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _close_from(first: int) -> None:
    """Close every descriptor numbered ``first`` or more."""
    if _libc().syscall(SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(0xFFFFFFFF), ctypes.c_uint(0)) != 0:
        for name in os.listdir("/proc/self/fd"):
            if int(name) >= first:
                with contextlib.suppress(OSError):
                    os.close(int(name))


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _reap() -> None:
    """Reap the template's children that ended (the keepers); the grader waits on them with pidfds."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def template_main(boot: dict) -> None:
    cfg = boot["config"]
    sys.path[:] = cfg["path"]  # python -S: no .pth file of the venv ran (an editable install's finder names the checkout)
    import site  # with -S, importing it runs nothing; add the builtins a notebook may use (exit, quit, help)

    site.setquit()
    site.setcopyright()
    site.sethelper()
    libc = _libc()
    _die_with(libc, cfg["parent"])  # the grader's death is the template's (and, through theirs, its workers')
    sock = socket.socket(fileno=cfg["socket"])
    if not cfg.get("light"):  # a light template (sandbox_mode's probe) runs no notebook: no torch
        load_protocol(boot["protocol"])  # and torch
        with contextlib.suppress(ImportError):
            import numpy  # noqa: F401 - torch may not have imported it yet
    boot.clear()  # the boot program holds it too: no host path stays in what workers inherit
    cfg.clear()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # an import error went to the grader's pipe; from here on nothing is printed
        os.dup2(null, fd)
    os.close(null)
    gc.collect()
    gc.freeze()  # the imported objects: a worker's garbage collector then leaves their pages shared
    sock.send(b'{"ready": true}')
    try:
        serve_births(sock)
    finally:
        _reap()
        os._exit(0)


def serve_births(sock: socket.socket) -> None:
    """Fork one worker per request; answer ``{"pid": N}`` with a pidfd of it, or ``{"error": "..."}``.
    Returns when the grader closes its end."""
    template = os.getpid()
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while True:
        _reap()
        if not poller.poll(1000):
            continue
        box = [socket.recv_fds(sock, MAX_BIRTH_BYTES, BIRTH_FDS)]  # [(data, fds, flags, address)]
        if not box[0][0]:
            return  # the grader is gone
        problem = None
        if box[0][2] & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(box[0][1]) != BIRTH_FDS:
            problem = "a malformed birth request"
        elif _threads() != 1:  # a fork copies one thread: a lock another one held would stay locked
            problem = "the template is not single-threaded"
        if problem is None:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                sock.detach()  # the descriptor is closed with the others; the object must not close a reused number
                try:
                    be_born(box, template)
                except BaseException:  # noqa: BLE001 - say why on the worker's output, which the grader shows
                    with contextlib.suppress(BaseException):
                        traceback.print_exc()
                        sys.stderr.flush()
                finally:
                    os._exit(1)
        for fd in box[0][1]:
            os.close(fd)
        box.clear()
        if problem is None:
            try:
                pidfd = os.pidfd_open(pid)  # not reaped yet, so it is this child's: no race with a recycled pid
            except OSError as exc:
                os.kill(pid, signal.SIGKILL)
                problem = f"pidfd_open: {exc}"
        if problem is not None:
            sock.send(json.dumps({"error": problem}).encode())
            continue
        socket.send_fds(sock, [json.dumps({"pid": pid}).encode()], [pidfd])
        os.close(pidfd)


def be_born(box: list, template: int) -> None:
    """A worker, just forked from the template: enter its cgroup, limits and namespaces, fork init
    (pid 1 of the new pid namespace) and keep it (never returns)."""
    data, fds, _flags, _address = box.pop()
    cfg = json.loads(data)
    del data
    libc = _libc()
    for folder in cfg.pop("cgroup"):  # first: everything the worker will ever start is inside it
        with open(os.path.join(folder, "cgroup.procs"), "w") as handle:
            handle.write(str(os.getpid()))
    _die_with(libc, template)
    # The grader's ends at fixed numbers (requests 0, output 1 and 2, replies 3, status 4), and
    # nothing else of the template's: its socket and anything a library opened are closed.
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 16) for fd in fds]
    for target, fd in zip((0, 3, 1, 4), moved):
        os.dup2(fd, target)
    os.dup2(1, 2)
    _close_from(5)
    os.setsid()
    for limit, value in cfg.pop("rlimits"):
        resource.setrlimit(limit, (value, value))
    os.chdir(cfg.pop("cwd"))
    os.environ.update(cfg.pop("env"))
    mode = cfg["sandbox"]
    if mode in ("root", "user"):
        uid, gid = os.getuid(), os.getgid()
        _check(libc.unshare(NAMESPACES | (CLONE_NEWUSER if mode == "user" else 0)), "unshare")
        if mode == "user":  # root inside, the grader's own uid outside (unshare --map-root-user)
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
                with open(f"/proc/self/{name}", "w") as handle:
                    handle.write(text)
        _die_with(libc, template)  # again: a change of credentials may have cleared it
    alive_r, alive_w = os.pipe()  # init's parent is outside its pid namespace (getppid() is 0 there)
    init = os.fork()
    if init == 0:
        os.close(alive_w)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # what unshare --kill-child did: init dies with its keeper
        poller = select.poll()
        poller.register(alive_r, select.POLLIN)
        if poller.poll(0):  # the keeper is already gone: the signal will never come
            os._exit(1)
        os.close(alive_r)
        os.close(4)  # the status socket is the keeper's
        become_init(cfg)
    os.close(alive_r)  # alive_w stays open as long as the keeper lives
    cfg.clear()
    keep(init)


def keep(init: int) -> None:
    """Report init (its pid and a pidfd) on the status socket, then how it ended; kill it if the
    grader hangs up. Never returns."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2, 3):  # the pipes are init's: the grader sees their end when the worker ends
        os.dup2(null, fd)
    os.close(null)
    status = socket.socket(fileno=4)
    pidfd = os.pidfd_open(init)
    with contextlib.suppress(OSError):
        socket.send_fds(status, [json.dumps({"init": init}).encode()], [pidfd])
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(status, select.POLLIN)  # the grader never writes: an event is its hang-up
    events = dict(poller.poll())
    if pidfd not in events:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    _pid, wait_status = os.waitpid(init, 0)
    with contextlib.suppress(OSError):
        status.send(json.dumps({"status": os.waitstatus_to_exitcode(wait_status)}).encode())
    os._exit(0)


def main(boot: dict | None) -> None:
    if boot is None:
        raise SystemExit("worker.py is started by autograder.grading.sandbox.Template, with its configuration on stdin")
    template_main(boot)


if __name__ == "__main__":
    main(globals().get("BOOT"))
