"""What a check sees of a learner's notebook: a proxy that forwards calls to a worker.

    sub = Submission.from_notebook("alice.ipynb", skip_grade_ids={"test_mask"})
    out, weights = sub.call("scaled_dot_product_attention", q, k, v, mask=mask)
    layer = sub.new("MultiHeadAttention", 16, 4)        # the object stays in the worker
    layer.method("load_state_dict", reference.state_dict())
    out, w = layer(x, x, x)                             # forward
    answer = sub.get("score_std_unscaled")              # a variable

Every value that comes back is plain data (tensors, numbers, strings, tuples, lists, dicts).
A failure of the learner's code raises ``protocol.StudentError`` with a message meant for the
learner and a ``kind`` (one of ``protocol.KINDS``; for an exception, its type names too).

If a call kills or hangs the worker, that function is remembered as broken (later calls to it
fail at once with the same message) and the next call to anything else starts a fresh worker,
so one bad function costs only the tests that use it.
"""
from __future__ import annotations

import errno
import json
import os
import re
import stat

# The release's first cell installs the course where it is missing (Colab): it is never sent to a
# worker, which has no network and must install nothing. (A learner who marks a cell of their own
# so only keeps their own code from running.)
from attnlab.course.messages import _
from attnlab.course.setup_cell import is_setup_cell, notebook_language

from .. import protocol
from ..protocol import Limits, StudentError
from .sandbox import Worker, WorkerError

MAX_NOTEBOOK_BYTES = 20 << 20
MAX_RESTARTS = 3


class SubmissionUnreadable(Exception):
    """The notebook file is missing or is not a notebook."""


def read_notebook(path: str) -> dict:
    """Read a submitted notebook with a size cap, never through a link; plain-words errors.

    A notebook in today's format (4) is plain JSON; an older one is converted by nbformat, which is
    imported only then (its import, through jsonschema, costs a grading process as much as torch's)."""
    name = os.path.basename(path)
    try:  # O_NOFOLLOW: a link is not the learner's notebook; O_NONBLOCK: a FIFO cannot stall us
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SubmissionUnreadable(_("{name} is a link: not graded", name=name) if exc.errno == errno.ELOOP
                                   else _("no notebook found at {name}", name=name)) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionUnreadable(_("no notebook found at {name}", name=name))
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise SubmissionUnreadable(_("{name} is {size} MB, more than the {limit} MB allowed", name=name,
                                         size=info.st_size >> 20, limit=MAX_NOTEBOOK_BYTES >> 20))
        data = handle.read(MAX_NOTEBOOK_BYTES + 1)
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise SubmissionUnreadable(_("{name} is more than the {limit} MB allowed", name=name,
                                     limit=MAX_NOTEBOOK_BYTES >> 20))
    try:
        nb = json.loads(data.decode("utf-8"))
        if not isinstance(nb, dict) or nb.get("nbformat") != 4:
            import nbformat

            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - json, encoding and nbformat errors alike
        raise SubmissionUnreadable(_("{name} is not a readable Jupyter notebook ({error})", name=name,
                                     error=f"{type(exc).__name__}: {str(exc)[:200]}")) from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise SubmissionUnreadable(_("{name} has no cells", name=name))
    return nb


def is_test_cell(cell, skip_grade_ids=frozenset()) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell.get("metadata"), dict) else {}
    if not isinstance(meta, dict):
        return False
    if meta.get("grade") and not meta.get("solution"):
        return True
    grade_id = meta.get("grade_id")
    return isinstance(grade_id, str) and grade_id in skip_grade_ids


def code_cells(nb, skip_grade_ids=frozenset()) -> list[dict]:
    """The cells a worker runs: every code cell except test cells (tests never come from a submission).
    A cell that Jupyter could not have written (its source a number, say) makes the notebook unreadable."""
    cells = []
    for index, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict):
            raise SubmissionUnreadable(_("cell {index} is not a notebook cell", index=index))
        if cell.get("cell_type") != "code" or is_test_cell(cell, skip_grade_ids) or is_setup_cell(cell):
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise SubmissionUnreadable(_("cell {index} is malformed: its source is not text ({type})", index=index,
                                         type=type(source).__name__))
        cells.append({"index": index, "source": source})
    return cells


class RemoteObject:
    """An object (e.g. an nn.Module) that lives in the worker."""

    def __init__(self, submission: "Submission", handle: protocol.Handle, label: str):
        self._sub, self.handle, self.label = submission, handle, label

    def __call__(self, *args, **kwargs):
        return self._sub._call(self.handle, args, kwargs, method="__call__", label=f"{self.label}(...)",
                               broken_key=self.label.split("(")[0])

    def method(self, name: str, *args, **kwargs):
        return self._sub._call(self.handle, args, kwargs, method=name, label=f"{self.label}.{name}(...)",
                               broken_key=self.label.split("(")[0])


class Submission:
    def __init__(self, cells: list[dict], limits: Limits | None = None, mode: str | None = None,
                 unreadable: str | None = None):
        self.cells = cells
        self.limits = limits or Limits()
        self.mode = mode
        self.unreadable = unreadable
        self.worker: Worker | None = None
        self.broken: dict[str, tuple[str, str]] = {}  # (message, kind) of each call that killed or hung a worker
        self.restarts = 0
        self.cell_errors: list[dict] = []
        self.fatal: str | None = None  # the notebook itself cannot run: every call fails
        self.fatal_kind = protocol.DEAD
        self.infrastructure_error = False  # the worker itself could not start: grade again later
        self.language = "en"  # the notebook's language (its metadata): the one its feedback speaks

    @classmethod
    def from_notebook(cls, path: str, skip_grade_ids=frozenset(), limits: Limits | None = None, mode: str | None = None):
        try:
            nb = read_notebook(path)
            cells = code_cells(nb, frozenset(skip_grade_ids))
        except SubmissionUnreadable as exc:
            return cls([], limits, mode, unreadable=exc.args[0])
        submission = cls(cells, limits, mode)
        submission.language = notebook_language(nb)
        return submission

    # ------------------------------------------------------------------ worker
    def _worker(self) -> Worker:
        if self.unreadable:
            raise StudentError(self.unreadable, protocol.UNREADABLE)
        if self.fatal:
            raise StudentError(self.fatal, self.fatal_kind)
        if self.worker is not None and self.worker.dead is None:
            return self.worker
        if self.worker is not None:
            self.worker.close()
            if self.restarts >= MAX_RESTARTS:
                self.fatal = _("the notebook's process failed too many times; the remaining checks were not run")
                self.fatal_kind = protocol.DEAD
                raise StudentError(self.fatal, self.fatal_kind)
            self.restarts += 1
        self.worker = Worker(self.cells, self.limits, mode=self.mode)
        try:
            self.worker.start()
        except OSError as exc:  # cannot even start a process: the grader's problem
            self.worker.dead, self.worker.boot_failed = _(
                "the grading worker could not start (not your fault; tell the course staff): {error}", error=str(exc)), True
        if self.worker.dead:
            self.fatal, self.fatal_kind = self.worker.dead, self.worker.dead_kind
            self.infrastructure_error = self.worker.boot_failed
            raise StudentError(self.fatal, self.fatal_kind)
        self.cell_errors = self.worker.cell_errors
        return self.worker

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def output(self) -> str:
        return self.worker.output if self.worker else ""

    def _hint(self, name: str = "") -> str:
        """Why a name may be missing: preferably the error of the cell that should define it."""
        if not self.cell_errors:
            return _("check the name: it must be spelled exactly like this")
        defines = re.compile(rf"^\s*(def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*=", re.M) if name else None
        cells = {c["index"] for c in self.cells if defines and defines.search(c["source"])}
        chosen = next((e for e in self.cell_errors if e.get("cell") in cells), self.cell_errors[0])
        return _("when the notebook ran, cell {cell} failed with {error}", cell=chosen["cell"], error=chosen["error"])

    def _call(self, target, args, kwargs, method=None, keep=False, label=None, broken_key=None):
        key = broken_key or (target if isinstance(target, str) else label)
        if key in self.broken:
            message, kind = self.broken[key]
            raise StudentError(_("{message} (not run again)", message=message), kind)
        worker = self._worker()
        try:
            return worker.call(target, *args, method=method, keep=keep, label=label, **kwargs)
        except WorkerError as exc:
            if exc.kind in (protocol.DEAD, protocol.TIMEOUT):
                self.broken[key] = (exc.message, exc.kind)
            hint = self._hint(key if isinstance(key, str) else "") if exc.kind == protocol.MISSING else ""
            raise StudentError(exc.message, exc.kind, label, exc.error_type, exc.error_types, hint=hint) from None

    # ------------------------------------------------------------------ API for checks
    def call(self, name: str, *args, **kwargs):
        """Call the learner's function ``name`` with plain arguments; return its plain result."""
        return self._call(name, args, kwargs, label=f"`{name}`")

    def new(self, name: str, *args, **kwargs) -> RemoteObject:
        """Instantiate the learner's class ``name``; the object stays in the worker."""
        handle = self._call(name, args, kwargs, keep=True, label=f"`{name}(...)`")
        return RemoteObject(self, handle, name)

    def get(self, name: str):
        """The value of the learner's variable ``name`` (plain data only)."""
        if name in self.broken:
            raise StudentError(*self.broken[name])
        try:
            return self._worker().get(name)
        except WorkerError as exc:
            hint = self._hint(name) if exc.kind == protocol.MISSING else ""
            raise StudentError(exc.message, exc.kind, error_type=exc.error_type, error_types=exc.error_types,
                               hint=hint) from None
