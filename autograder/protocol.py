"""The wire format between the trusted grader and the worker that runs a learner's notebook.

Only plain data crosses: a JSON header and, for tensors, one safetensors blob. No pickle.
The module imports nothing from the project (stdlib, torch, safetensors only), because the
worker loads it before the sandbox hides the repository.

A message on a pipe is: 4-byte big-endian JSON length, 4-byte blob length, JSON bytes, blob.

Values are encoded as JSON with these tags (everything else is a JSON scalar or list):
``{"$tensor": "t0"}`` a tensor stored in the blob, ``{"$tuple": [...]}``, ``{"$dict": {...}}``
(string keys only), ``{"$float": "nan" | "inf" | "-inf"}``, ``{"$handle": 3}`` an object kept in
the worker, ``{"$unsupported": "type name"}`` a value that cannot cross.
"""
from __future__ import annotations

import json
import math
import os
import select
import struct
import time

import torch
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

HEADER = struct.Struct(">II")
MAX_JSON_BYTES = 4 << 20
MAX_BLOB_BYTES = 256 << 20
MAX_ITEMS = 100_000  # entries in one encoded value: a guard against huge nested structures


class ProtocolError(Exception):
    """A message that is malformed, too large, or not received in time."""


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
                if v["$tensor"] not in tensors:
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


def write_message(fd: int, header: dict, tensors: dict[str, torch.Tensor] | None = None) -> None:
    data = memoryview(pack(header, tensors))
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_message(fd: int, deadline: float | None = None, max_blob: int = MAX_BLOB_BYTES):
    """Read one message -> (header dict, tensors). Raises EOFError, TimeoutError or ProtocolError."""
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
        blob = _read_exact(fd, blob_len, deadline)
        try:
            tensors = _st_load(blob)
        except Exception as exc:  # safetensors raises its own error types on bad bytes
            raise ProtocolError(f"tensor data could not be read: {exc}") from None
    return header, tensors
