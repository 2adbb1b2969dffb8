"""The wire format between grader and worker: plain data only, size caps, clear errors."""
from __future__ import annotations

import json
import math
import os
import struct
import threading

import pytest
import torch

from autograder.checks import expect
from autograder import protocol


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
