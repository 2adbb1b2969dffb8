"""The wire format between grader and worker: plain data only, size caps, clear errors."""
from __future__ import annotations

import ast
import json
import math
import os
import re
import struct
import threading

import pytest
import torch

from autograder import inline, protocol
from autograder.checks import expect
from autograder.grading import worker
from autograder.grading.sandbox import WorkerError
from autograder.protocol import Limits, StudentError


def roundtrip(value):
    return protocol.decode(*protocol.encode(value))


def test_plain_values_survive_the_roundtrip():
    value = (torch.arange(6.0).reshape(2, 3), {"n": 3, "s": "x", "none": None, "flag": True},
             [1.5, float("nan"), float("inf")], torch.ones(2, dtype=torch.bool), torch.zeros(0, 4, dtype=torch.float64))
    back = roundtrip(value)
    assert isinstance(back, tuple) and isinstance(back[2], list)
    torch.testing.assert_close(back[0], value[0])
    assert back[1] == value[1]
    assert back[2][0] == 1.5 and math.isnan(back[2][1]) and back[2][2] == math.inf
    assert back[3].dtype == torch.bool and back[4].shape == (0, 4) and back[4].dtype == torch.float64


def test_tensor_subclasses_views_and_grad_come_back_as_plain_tensors():
    class Liar(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return True

    base = torch.arange(12.0, requires_grad=True)
    view = base.view(3, 4).t()
    liar = torch.ones(2, 2).as_subclass(Liar)
    back_view, back_liar = roundtrip((view, liar))
    assert type(back_view) is torch.Tensor and not back_view.requires_grad
    torch.testing.assert_close(back_view, view.detach())
    assert type(back_liar) is torch.Tensor
    torch.testing.assert_close(back_liar, torch.ones(2, 2))


def test_objects_that_cannot_cross_are_named_not_sent():
    class Anything:
        def __eq__(self, other):
            return True

    back = roundtrip([Anything(), {1: 2}])
    assert all(isinstance(b, protocol.Unsupported) for b in back)
    assert back[0].type_name == "Anything"
    with pytest.raises(expect.CheckFailed, match="expected a tensor, got an object of type Anything"):
        expect.tensor(back[0], torch.zeros(1), "out")


def _feed(data: bytes):
    r, w = os.pipe()

    def writer():
        os.write(w, data)
        os.close(w)

    threading.Thread(target=writer, daemon=True).start()
    return r


@pytest.mark.parametrize("data, message", [
    (struct.pack(">II", 10**9, 0), "too large"),
    (struct.pack(">II", 5, 0) + b"nope!", "not valid JSON"),
    (struct.pack(">II", 2, 0) + b"[]", "not a JSON object"),
    (struct.pack(">II", 2, 5) + b"{}" + b"12345", "tensor data could not be read"),
])
def test_malformed_messages_are_protocol_errors(data, message):
    with pytest.raises(protocol.ProtocolError, match=message):
        protocol.read_message(_feed(data))


def test_a_message_naming_a_missing_tensor_is_refused():
    with pytest.raises(protocol.ProtocolError, match="does not carry"):
        protocol.decode({"$tensor": "t9"}, {})


def test_truncated_message_is_end_of_file():
    with pytest.raises(EOFError):
        protocol.read_message(_feed(struct.pack(">II", 10, 0) + b"{}"))


def test_write_then_read():
    r, w = os.pipe()
    protocol.write_message(w, {"ok": True, "value": {"$tensor": "t0"}}, {"t0": torch.eye(2)})
    header, tensors = protocol.read_message(r, deadline=None)
    assert header["ok"] and json.dumps(header)
    torch.testing.assert_close(protocol.decode(header["value"], tensors), torch.eye(2))


def test_protocol_imports_nothing_of_the_project():
    """The worker loads protocol.py by its path before the sandbox hides the course: it must stand alone."""
    tree = ast.parse(open(protocol.__file__, encoding="utf-8").read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module}
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))
    assert not imported & {"attnlab", "autograder"}, imported
    assert Limits().call_s > 0 and Limits(call_s=5).call_s == 5


class ShapeError(ValueError):
    pass


def _reply(request: dict, namespace: dict) -> dict:
    """The worker's reply to ``request``, computed in this process."""
    return worker.handle(request, {}, namespace, {}, protocol, lambda: None)


def test_the_error_kinds_are_named_constants_shared_by_worker_grader_and_checks():
    assert protocol.WORKER_KINDS < protocol.KINDS
    assert {protocol.TIMEOUT, protocol.DEAD, protocol.UNREADABLE}.isdisjoint(protocol.WORKER_KINDS)
    # The worker writes no kind as a string of its own: each is one of the protocol's constants.
    assert not re.search(r"""["']kind["']\s*:\s*["']""", open(worker.__file__, encoding="utf-8").read())

    def bad(x):
        raise ShapeError(f"cannot split {x}")

    namespace = {"bad": bad, "n": 3}
    call = {"op": "call", "target": "bad", "args": [1], "kwargs": {"$dict": {}}, "label": "`bad`"}
    raised = _reply(call, namespace)
    assert raised["kind"] == protocol.RAISED and raised["error_type"] == "ShapeError"
    assert raised["error_types"][:3] == ["ShapeError", "ValueError", "Exception"]
    assert raised["error"] == "ShapeError: cannot split 1"
    assert _reply({**call, "target": "nope"}, namespace)["kind"] == protocol.MISSING
    assert _reply({**call, "target": "n"}, namespace)["kind"] == protocol.MISSING  # not callable
    assert _reply({"op": "get", "name": "nope"}, namespace)["kind"] == protocol.MISSING
    assert _reply({**call, "method": "_secret"}, namespace)["kind"] == protocol.PROTOCOL
    assert _reply({"op": "delete"}, namespace)["kind"] == protocol.PROTOCOL

    # The trusted side reads the same reply into the same kind and type names.
    error = WorkerError.from_reply(json.loads(json.dumps(raised)))
    assert (error.kind, error.error_type) == (protocol.RAISED, "ShapeError")
    assert error.error_types[:2] == ("ShapeError", "ValueError")


@pytest.mark.parametrize("reply, kind, error_type", [
    ({"ok": False, "kind": "dead", "error": "x"}, protocol.PROTOCOL, None),  # only the trusted side decides "dead"
    ({"ok": False, "error": "x"}, protocol.PROTOCOL, None),
    ({"ok": False, "kind": ["raised"], "error": "x"}, protocol.PROTOCOL, None),
    ({"ok": False, "kind": "raised", "error": "x", "error_type": "Value Error<script>", "error_types": "ValueError"},
     protocol.RAISED, None),
    ({"ok": False, "kind": "raised", "error": "x", "error_type": "KeyError", "error_types": ["KeyError", 3, "a b"]},
     protocol.RAISED, "KeyError"),
])
def test_a_forged_failure_reply_is_read_within_bounds(reply, kind, error_type):
    error = WorkerError.from_reply(reply)
    assert error.kind == kind and error.error_type == error_type
    assert all(re.fullmatch(r"\w+", name) for name in error.error_types)


def test_a_student_error_carries_the_learners_exception_type():
    reply = protocol.raised_reply(ShapeError("odd"))
    exc = StudentError(reply["error"], protocol.RAISED, "`split`", reply["error_type"], reply["error_types"])
    assert isinstance(exc, AssertionError)  # the runner counts it as the learner's failure
    assert str(exc) == "`split` raised ShapeError: odd" and exc.detail == "ShapeError: odd"
    assert exc.kind == protocol.RAISED and exc.error_type == "ShapeError"
    assert exc.raised("ShapeError") and exc.raised("ValueError") and exc.raised("Exception")
    assert not exc.raised("TypeError")
    timeout = StudentError("`split` did not return within 20 s", protocol.TIMEOUT)
    assert timeout.error_type is None and not timeout.raised("Exception")


CELL = """
class ShapeError(ValueError):
    pass

def split(x, heads):
    if x % heads:
        raise ShapeError(f"{x} is not divisible by {heads}")
    return x // heads

class Box:
    def __init__(self, size):
        if size < 0:
            raise ValueError("negative size")
        self.size = size

    def grow(self, by):
        raise NotImplementedError
"""


def _failures(sub) -> dict:
    """{what was tried: (kind, error_type, error_types, message)} of each StudentError."""
    assert sub.call("split", 12, 3) == 4
    box = sub.new("Box", 2)
    attempts = {
        "raises a subclass of ValueError": lambda: sub.call("split", 10, 3),
        "the constructor raises": lambda: sub.new("Box", -1),
        "a method not written yet": lambda: box.method("grow", 1),
        "no such method": lambda: box.method("shrink"),
        "no such function": lambda: sub.call("splitt", 10, 3),
        "no such variable": lambda: sub.get("answer"),
    }
    found = {}
    for what, attempt in attempts.items():
        with pytest.raises(StudentError) as info:
            attempt()
        exc = info.value
        found[what] = (exc.kind, exc.error_type, exc.error_types, str(exc))
    return found


@pytest.mark.slow
def test_the_worker_and_the_in_kernel_path_raise_the_same_student_errors():
    """A check sees the same StudentError under the grader (a sandboxed worker) and under plain
    nbgrader (autograder.inline, in the learner's kernel)."""
    from autograder.grading.submission import Submission

    with Submission([{"index": 1, "source": CELL}], Limits(startup_s=30, call_s=30)) as sub:
        remote = _failures(sub)
    namespace: dict = {}
    exec(compile(CELL, "<cell 1>", "exec"), namespace)  # a worker names cells like this
    local = _failures(inline.LocalSubmission(namespace))
    assert remote == local
    kind, error_type, error_types, message = remote["raises a subclass of ValueError"]
    assert (kind, error_type) == (protocol.RAISED, "ShapeError") and "ValueError" in error_types
    assert message == "`split` raised ShapeError: 10 is not divisible by 3 (cell 1, line 7)"
    assert remote["a method not written yet"][:2] == (protocol.RAISED, "NotImplementedError")
    assert {remote[w][0] for w in ("no such method", "no such function", "no such variable")} == {protocol.MISSING}


def test_a_check_tests_the_exception_type_in_the_kernel_too():
    """ps04's check wants a ValueError for heads that do not divide d_model: the in-kernel path
    reports the learner's exception as the worker does, so the check decides the same way."""
    from attnlab.multihead import MultiHeadAttention

    inline.run_check("ps04_multihead", "test_mha_init", {"MultiHeadAttention": MultiHeadAttention})

    class Quiet(MultiHeadAttention):
        def __init__(self, d_model, num_heads):
            torch.nn.Module.__init__(self)

    class Wrong(MultiHeadAttention):
        def __init__(self, d_model, num_heads):
            if d_model % num_heads:
                raise TypeError("heads do not divide d_model")
            super().__init__(d_model, num_heads)

    with pytest.raises(expect.CheckFailed, match="should raise a ValueError.*but it raised nothing"):
        inline.run_check("ps04_multihead", "test_mha_init", {"MultiHeadAttention": Quiet})
    with pytest.raises(expect.CheckFailed, match=r"should raise a ValueError .*raised TypeError: heads do not divide"):
        inline.run_check("ps04_multihead", "test_mha_init", {"MultiHeadAttention": Wrong})
