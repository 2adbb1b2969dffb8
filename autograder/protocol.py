"""The wire format between the trusted grader and the worker that runs a learner's notebook.

Only plain data crosses: a JSON header and, for tensors, one safetensors blob. No pickle.
The module imports nothing from the project (stdlib, torch, safetensors only), because the
worker loads it before the sandbox hides the repository.

A message on a pipe is: 4-byte big-endian JSON length, 4-byte blob length, JSON bytes, blob.
The reader checks the blob's safetensors header (at most MAX_TENSORS tensors whose sizes add up
to the blob) before it reads the tensor data, and the trusted side reads and writes under a deadline.

Values are encoded as JSON with these tags (everything else is a JSON scalar or list):
``{"$tensor": "t0"}`` a tensor stored in the blob, ``{"$tuple": [...]}``, ``{"$dict": {...}}``
(string keys only), ``{"$float": "nan" | "inf" | "-inf"}``, ``{"$handle": 3}`` an object kept in
the worker, ``{"$unsupported": "type name"}`` a value that cannot cross.

A reply is ``{"ok": true, "value": ...}`` or ``{"ok": false, "kind": KIND, "error": "plain words"}``;
a reply of kind RAISED also names the learner's exception (``"error_type": "ValueError"``) and the
types it derives from (``"error_types": ["ValueError", "Exception", "BaseException"]``).

Also here, because both sides (and the checks) need them: the error kinds, ``StudentError`` (what
a check sees when the learner's code gives no value) and ``Limits`` (a worker's resource limits).
"""
from __future__ import annotations

import json
import math
import os
import select
import struct
import sys
import time
import traceback
from dataclasses import dataclass

import torch
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

HEADER = struct.Struct(">II")
MAX_JSON_BYTES = 4 << 20
MAX_BLOB_BYTES = 256 << 20
MAX_ITEMS = 100_000  # entries in one encoded value: a guard against huge nested structures
MAX_TENSORS = 4096  # tensors in one message (a transformer's state_dict holds a few hundred)
MAX_TENSOR_HEADER = 1 << 20  # bytes of the safetensors header: about 100 bytes per tensor
# Bytes per element of each safetensors dtype: the header's shapes must account for the blob exactly.
ITEM_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
              "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


class ProtocolError(Exception):
    """A message that is malformed, too large, or not received in time."""


# Why a request gave no value: the "kind" of a failed reply, and of StudentError.
# Sent by the worker:
RAISED = "raised"  # the learner's code raised an exception (the reply names its type)
MISSING = "missing"  # the notebook does not define the name, or the object has no such method
UNSUPPORTED = "unsupported"  # the result is not plain data and could not be sent back
PROTOCOL = "protocol"  # a request the worker refuses, or a reply the grader cannot read
WORKER_KINDS = frozenset({RAISED, MISSING, UNSUPPORTED, PROTOCOL})
# Decided by the trusted side:
TIMEOUT = "timeout"  # the notebook or a call ran past its time limit (the worker is then killed)
DEAD = "dead"  # the worker died (crash, limit, exit) or could not start; later calls to it fail at once
UNREADABLE = "unreadable"  # the submitted file is missing or is not a notebook
KINDS = WORKER_KINDS | {TIMEOUT, DEAD, UNREADABLE}


@dataclass
class Limits:
    """Resource limits of one worker, set by the trusted side. Times in seconds."""

    boot_s: float = 90.0  # fork from the template and enter the sandbox (the first worker: the template's import of torch too)
    startup_s: float = 60.0  # run every code cell of the notebook
    call_s: float = 20.0  # one request
    memory_mb: int = 3072  # RLIMIT_AS per process, and the cgroup's limit over the tree; torch alone maps about 650 MB
    cpu_s: int = 300  # RLIMIT_CPU over the worker's whole life
    file_mb: int = 16  # RLIMIT_FSIZE
    tmpfs_mb: int = 64  # size of the worker's writable folders in namespace mode
    nproc: int = 32  # processes + threads of the worker's tree (RLIMIT_NPROC; the cgroup's pids.max, +2 for its keeper and init)
    output_kb: int = 64  # stdout/stderr kept (the rest is read and dropped)
    max_reply_mb: int = 64


def _(template: str, /, **params) -> str:
    """A learner-facing message: the course's translatable ``attnlab.course.messages._`` where the course
    library is loaded (the trusted side, which alone makes a StudentError), else the English text. This
    module imports nothing of the project (the worker loads it alone), hence the lookup."""
    messages = sys.modules.get("attnlab.course.messages")
    return messages._(template, **params) if messages is not None else template.format(**params)


class StudentError(AssertionError):
    """The learner's code gave no value; ``str(error)`` says why, in plain words, for the learner:
    "`f` raised ValueError: d_model must be even (cell 9, line 4)", "... did not return within 20 s".

    ``kind`` is one of KINDS. For RAISED, ``error_type`` is the exception's type name and
    ``raised("ValueError")`` is true for that type and the types it derives from, as
    ``except ValueError`` would be. ``detail`` is the message without the name of the call.
    Checks test ``kind`` and ``raised``, never the message text. Raised alike by the grader's
    ``Submission`` and by ``autograder.inline`` (plain nbgrader), so a check behaves the same under both.
    """

    def __init__(self, detail: str, kind: str, label: str | None = None, error_type: str | None = None,
                 error_types: tuple[str, ...] = (), hint: str = ""):
        message = _("{label} raised {detail}", label=label, detail=detail) if kind == RAISED and label else detail
        if hint:  # "... (check the name: it must be spelled exactly like this)"
            message = _("{message} ({hint})", message=message, hint=hint)
        super().__init__(message)
        self.kind = kind
        self.detail = detail
        self.error_type = error_type
        self.error_types = tuple(error_types) or ((error_type,) if error_type else ())

    def __str__(self):  # in the language self-checks speak, as CheckFailed (English in the grader)
        messages = sys.modules.get("attnlab.course.messages")
        if messages is not None and len(self.args) == 1:
            return messages.render(self.args[0])
        return super().__str__()

    def raised(self, type_name: str) -> bool:
        """Whether the learner's code raised a ``type_name`` (or a subclass of it)."""
        return self.kind == RAISED and type_name in self.error_types


def describe_error(exc: BaseException) -> str:
    """An exception raised by the learner's code, in plain words: "ValueError: ... (cell 9, line 4)"."""
    name = _type_names(exc)[0]
    try:
        detail = str(exc)
        text = f"{name}: {detail}" if detail else name
    except BaseException:  # a hostile __str__
        text = name
    if isinstance(exc, NotImplementedError):
        text += " (this part is not written yet)"
    where = ""
    try:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename.startswith("<cell "):
                where = f" ({frame.filename[1:-1]}, line {frame.lineno})"
    except BaseException:
        pass
    if isinstance(exc, SystemExit):
        try:
            text = f"the code called sys.exit({exc.code!r})" if not isinstance(exc.code, str) else "the code called sys.exit()"
        except BaseException:  # a hostile __repr__ of the exit code
            text = "the code called sys.exit()"
    return (text[:600] + where)[:700]


def _type_names(exc: BaseException) -> list[str]:
    names = []
    try:
        for cls in type(exc).__mro__:
            name = cls.__name__
            if type(name) is str and cls is not object:  # a metaclass can make __name__ anything
                names.append(name[:100])
    except BaseException:
        pass
    return names[:32] or ["BaseException"]


def raised_reply(exc: BaseException) -> dict:
    """The failed reply for an exception raised by the learner's code (kind RAISED)."""
    names = _type_names(exc)
    return {"ok": False, "kind": RAISED, "error": describe_error(exc), "error_type": names[0], "error_types": names}


class Handle:
    """A reference to an object that stays inside the worker (e.g. an nn.Module instance)."""

    def __init__(self, ident: int, type_name: str = "object"):
        self.ident = int(ident)
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} in the worker #{self.ident}>"


class Unsupported:
    """A value the worker could not send back (its type name only)."""

    def __init__(self, type_name: str):
        self.type_name = str(type_name)[:200]

    def __repr__(self) -> str:
        return f"<a {self.type_name} object>"


def encode(value) -> tuple[dict | list | str | int | float | bool | None, dict[str, torch.Tensor]]:
    """Turn a value into (JSON-able structure, named plain tensors)."""
    tensors: dict[str, torch.Tensor] = {}
    count = [0]

    def enc(v, depth):
        count[0] += 1
        if count[0] > MAX_ITEMS or depth > 20:
            raise ProtocolError("value is too large or too deeply nested to send")
        if v is None or type(v) is bool or type(v) is str:
            return v
        if type(v) is int:
            return v if abs(v) < 2**63 else {"$unsupported": "int larger than 64 bits"}
        if type(v) is float:
            return v if math.isfinite(v) else {"$float": repr(v)}
        if isinstance(v, torch.Tensor):
            if len(tensors) >= MAX_TENSORS:
                raise ProtocolError(f"more than {MAX_TENSORS} tensors in one value")
            name = f"t{len(tensors)}"
            # Copy into a fresh plain dense tensor with every override switched off: drops
            # subclasses (and their __torch_function__), views and autograd state.
            with torch._C.DisableTorchFunction():
                plain = torch.Tensor._make_subclass(torch.Tensor, v.detach())
                tensors[name] = plain.to("cpu").contiguous().clone()
            return {"$tensor": name}
        if isinstance(v, Handle):
            return {"$handle": v.ident, "type": v.type_name}
        if type(v) is tuple:
            return {"$tuple": [enc(x, depth + 1) for x in v]}
        if type(v) is list:
            return [enc(x, depth + 1) for x in v]
        if type(v) is dict and all(type(k) is str for k in v):
            return {"$dict": {k: enc(x, depth + 1) for k, x in v.items()}}
        return {"$unsupported": type(v).__name__}

    return enc(value, 0), tensors


def decode(structure, tensors: dict[str, torch.Tensor]):
    """Inverse of ``encode``; unknown tags are a ProtocolError."""
    count = [0]

    def dec(v, depth):
        count[0] += 1
        if count[0] > MAX_ITEMS or depth > 22:
            raise ProtocolError("value is too large or too deeply nested")
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list):
            return [dec(x, depth + 1) for x in v]
        if isinstance(v, dict) and len(v) >= 1:
            if "$tensor" in v:
                if not isinstance(v["$tensor"], str) or v["$tensor"] not in tensors:
                    raise ProtocolError(f"message names a tensor {v['$tensor']!r} that it does not carry")
                return tensors[v["$tensor"]]
            if "$tuple" in v and isinstance(v["$tuple"], list):
                return tuple(dec(x, depth + 1) for x in v["$tuple"])
            if "$dict" in v and isinstance(v["$dict"], dict):
                return {str(k): dec(x, depth + 1) for k, x in v["$dict"].items()}
            if "$float" in v and v["$float"] in ("nan", "inf", "-inf"):
                return float(v["$float"])
            if "$handle" in v and isinstance(v["$handle"], int):
                return Handle(v["$handle"], str(v.get("type", "object")))
            if "$unsupported" in v:
                return Unsupported(v["$unsupported"])
        raise ProtocolError("malformed value in message")

    return dec(structure, 0)


def pack(header: dict, tensors: dict[str, torch.Tensor] | None = None) -> bytes:
    body = json.dumps(header, allow_nan=False).encode()
    blob = _st_save(tensors) if tensors else b""
    if len(body) > MAX_JSON_BYTES or len(blob) > MAX_BLOB_BYTES:
        raise ProtocolError("message too large")
    return HEADER.pack(len(body), len(blob)) + body + blob


def _wait(fd: int, event: int, seconds: float) -> bool:
    """Whether ``fd`` is ready (or closed at the other end) within ``seconds``; poll, not select,
    so that a grader holding many descriptors is not limited to numbers below 1024."""
    poller = select.poll()
    poller.register(fd, event)
    return bool(poller.poll(max(1, math.ceil(seconds * 1000))))


def write_bytes(fd: int, data: bytes, deadline: float | None = None) -> None:
    """Write all of ``data``. With a deadline, ``fd`` must be non-blocking (``os.set_blocking(fd, False)``):
    a reader that stops reading (a full or shrunken pipe) then raises TimeoutError instead of hanging."""
    data = memoryview(data)
    while data:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not _wait(fd, select.POLLOUT, left):
                raise TimeoutError
        try:
            n = os.write(fd, data[:1 << 20])
        except BlockingIOError:  # room for a byte, not for this chunk: wait again
            continue
        data = data[n:]


def write_message(fd: int, header: dict, tensors: dict[str, torch.Tensor] | None = None,
                  deadline: float | None = None) -> None:
    write_bytes(fd, pack(header, tensors), deadline)


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if not _wait(fd, select.POLLIN, left):
                raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def check_tensor_header(header: bytes, data_len: int) -> None:
    """A safetensors header, read as untrusted data before any tensor is built: a JSON object of at
    most MAX_TENSORS entries, each a known dtype, a shape of non-negative ints and the offsets of
    exactly its bytes, the entries together covering the ``data_len`` bytes that follow."""
    try:
        table = json.loads(header)
    except (ValueError, RecursionError):
        raise ProtocolError("tensor data could not be read: its header is not valid JSON") from None
    if not isinstance(table, dict):
        raise ProtocolError("tensor data could not be read: its header is not a JSON object")
    table.pop("__metadata__", None)
    if len(table) > MAX_TENSORS:
        raise ProtocolError(f"message carries {len(table)} tensors, more than the {MAX_TENSORS} allowed")
    spans = []
    for name, entry in table.items():
        if not (isinstance(entry, dict) and entry.get("dtype") in ITEM_BYTES and isinstance(entry.get("shape"), list)
                and len(entry["shape"]) <= 32 and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
                and all(type(x) is int and x >= 0 for x in entry["shape"] + entry["data_offsets"])):
            raise ProtocolError(f"tensor data could not be read: malformed entry for {name[:40]!r}")
        size = ITEM_BYTES[entry["dtype"]] * math.prod(entry["shape"])
        begin, end = entry["data_offsets"]
        if end - begin != size or end > data_len:
            raise ProtocolError(f"tensor data could not be read: {name[:40]!r} does not fit its bytes")
        spans.append((begin, end))
    covered = 0
    for begin, end in sorted(spans):
        if begin != covered:
            raise ProtocolError("tensor data could not be read: tensors overlap or leave gaps")
        covered = end
    if covered != data_len:
        raise ProtocolError("tensor data could not be read: its size does not match its header")


def read_message(fd: int, deadline: float | None = None, max_blob: int = MAX_BLOB_BYTES):
    """Read one message -> (header dict, tensors). Raises EOFError, TimeoutError or ProtocolError.

    The blob's safetensors header is read and checked first (``check_tensor_header``), so a reply of
    a million empty tensors is refused before it costs the reader any memory."""
    json_len, blob_len = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    if json_len > MAX_JSON_BYTES or blob_len > max_blob:
        raise ProtocolError(f"message too large ({json_len} + {blob_len} bytes)")
    try:
        header = json.loads(_read_exact(fd, json_len, deadline))
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, absurd nesting
        raise ProtocolError(f"message is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("message header is not a JSON object")
    tensors = {}
    if blob_len:
        if blob_len < 8:
            raise ProtocolError("tensor data could not be read: it is too short")
        prefix = _read_exact(fd, 8, deadline)
        table_len = int.from_bytes(prefix, "little")
        if table_len > min(MAX_TENSOR_HEADER, blob_len - 8):
            raise ProtocolError(f"tensor data could not be read: a header of {table_len} bytes")
        table = _read_exact(fd, table_len, deadline)
        check_tensor_header(table, blob_len - 8 - table_len)
        data = _read_exact(fd, blob_len - 8 - table_len, deadline)
        try:
            tensors = _st_load(prefix + table + data)
        except Exception as exc:  # safetensors raises its own error types on bad bytes
            raise ProtocolError(f"tensor data could not be read: {exc}") from None
    return header, tensors
