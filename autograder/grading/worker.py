"""The untrusted side: a fresh process that runs one learner's notebook and answers calls.

Started by ``autograder.grading.sandbox.Worker`` as ``python -I -B worker.py CONFIG_JSON``, usually
inside new mount/network/pid namespaces (``unshare``). Before any learner code runs it

1. builds a new root file system from a tmpfs holding read-only bind mounts of only what Python
   and PyTorch need (the system, the interpreter, the virtual environment), with the course
   package (reference, checks) hidden, then ``pivot_root``s into it and detaches the old root,
   so the solutions, hidden tests, other submissions and the gradebook are simply not there;
2. drops privileges: as host root it switches to an unprivileged uid (so ``RLIMIT_NPROC`` holds
   and no file outside is writable); in a user namespace it drops every capability.

Then it executes the notebook's code cells (sent by the grader; test cells are never sent),
and serves requests: call a function, instantiate a class, call a method of a kept object,
read a variable. Replies are plain data, a failure named by one of the error kinds of ``protocol``
(an exception of the learner's by its type names too). Nothing here decides a score.

This file imports nothing from the project except ``autograder/protocol.py`` (loaded by its path
before the sandbox hides it).
"""
from __future__ import annotations

import builtins
import contextlib
import ctypes
import json
import os
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 38, 24
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}


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
    for path in cfg["hide"]:
        if os.path.isdir(root + path):
            _mount(libc, "tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=555")
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
    libc = _libc()
    if cfg["sandbox"] == "root" or (cfg["sandbox"] == "none" and os.getuid() == 0 and cfg.get("uid")):
        uid = cfg["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # leaving uid 0 clears every capability
    elif cfg["sandbox"] == "user":
        for cap in range(64):
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                        ("inheritable", ctypes.c_uint32)]

        _check(libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def strip_magics(source: str) -> str:
    """Comment out IPython magics and shell escapes: this is plain Python."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append(("# " + line) if stripped.startswith(("%", "!")) else line)
    return "\n".join(lines)


def load_protocol():
    """``autograder/protocol.py`` by its path (it imports nothing from the project), loaded before
    the sandbox hides the package; the package itself is never imported here."""
    if "protocol" not in sys.modules:
        import importlib.util

        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "protocol.py")
        spec = importlib.util.spec_from_file_location("protocol", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["protocol"] = module
        spec.loader.exec_module(module)
    return sys.modules["protocol"]


def serve(cfg: dict) -> None:
    import torch

    protocol = load_protocol()
    torch.set_num_threads(1)
    rfd, wfd = cfg["rfd"], cfg["wfd"]
    header, _ = protocol.read_message(rfd)
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
                                         "error": f"the result could not be sent back: {protocol.describe_error(exc)}"})


def handle(request, tensors, namespace, handles, protocol, restore_builtins) -> dict:
    op = request.get("op")
    try:
        if op == "get":
            name = request["name"]
            if name not in namespace:
                return {"ok": False, "kind": protocol.MISSING, "error": f"the notebook does not define `{name}`"}
            return {"ok": True, "value": namespace[name]}
        if op != "call":
            return {"ok": False, "kind": protocol.PROTOCOL, "error": f"unknown request {op!r}"}
        target = request["target"]
        if isinstance(target, str):
            if target not in namespace:
                return {"ok": False, "kind": protocol.MISSING, "error": f"the notebook does not define `{target}`"}
            obj = namespace[target]
        else:
            obj = handles[int(target)]
        method = request.get("method")
        if method:
            if method.startswith("_") and method not in ("__call__",):
                return {"ok": False, "kind": protocol.PROTOCOL, "error": "private methods cannot be called"}
            if not hasattr(obj, method):
                return {"ok": False, "kind": protocol.MISSING,
                        "error": f"`{request.get('label', target)}` has no method `{method}`"}
            obj = getattr(obj, method)
        if not callable(obj):
            return {"ok": False, "kind": protocol.MISSING, "error": f"`{request.get('label', target)}` is not a function or class"}
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


def main() -> None:
    cfg = json.loads(sys.argv[1])
    if not cfg.get("probe"):
        load_protocol()  # load it (and torch) before the repository disappears
    if cfg["sandbox"] in ("root", "user"):
        build_root(cfg)
    drop_privileges(cfg)
    if cfg.get("probe"):  # sandbox_mode() asks whether this machine can build the sandbox
        hidden = not os.path.exists(os.path.abspath(__file__))
        print("sandbox-ok" if hidden or cfg["sandbox"] == "none" else "sandbox-leaky", flush=True)
        return
    os.chdir(cfg["workdir"])
    os.umask(0o077)
    serve(cfg)


if __name__ == "__main__":
    main()
