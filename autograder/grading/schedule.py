"""Where submissions are graded: one small interface, two backends.

    with scheduler_for(jobs=4, dask=None) as where:          # or dask="tcp://host:8786" / "local:4"
        for student, result in where.grade(assignment, {student: path}, limits, fingerprint):
            ...                                            # as each finishes, in the coordinator

- ``LocalPool``: this machine's worker processes (``runner.grade_each``).
- ``DaskPool``: the workers of a Dask cluster (``--dask ADDRESS``), or a ``distributed.LocalCluster``
  of N single-threaded worker processes (``--dask local:N``). Each task carries the notebook's bytes
  and the coordinator's checks fingerprint (``remote.grade_task`` runs on the node); the result comes
  back as plain data (``GradeResult.to_dict``). A worker that dies loses nothing: the scheduler runs
  its tasks again elsewhere (up to its ``allowed-failures``); each future completes, and is yielded,
  once. Dask is optional (``pip install 'attention-course[dask]'``) and imported only here, when used.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Protocol

from autograder.protocol import Limits

from . import remote, runner, sandbox
from .collect import UsageError, read_submission
from .runner import GradeResult


class Scheduler(Protocol):
    mode: str  # the sandbox mode of the machines that run learner code, once started ("-" before)

    def describe(self) -> str:
        """How this run grades, for the summary line: "with 4 worker(s) (sandbox: root)"."""

    def start(self) -> None:
        """Get ready to grade (a cluster starts or is reached here); only when there is work."""

    def grade(self, assignment: str, notebooks: dict[str, str], limits: Limits | None,
              fingerprint: str) -> Iterator[tuple[str, GradeResult]]:
        """Grade ``{student: path}``; yield (student, result) as each finishes."""

    def close(self) -> None:
        """Let go of what ``start`` took (a cluster, a connection); the results are already yielded."""

    def __enter__(self): ...

    def __exit__(self, *exc): ...


class LocalPool:
    """This machine's worker processes, ``jobs`` at a time."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.mode = "-"

    def start(self) -> None:
        self.mode = sandbox.sandbox_mode()

    def describe(self) -> str:
        return f"with {self.jobs} worker(s) (sandbox: {self.mode})"

    def grade(self, assignment, notebooks, limits, fingerprint):
        return runner.grade_each(assignment, notebooks, self.jobs, limits, self.mode)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


MISSING_DASK = ("--dask needs the Dask extra, which is not installed here: pip install 'attention-course[dask]' "
                "(or the dask and distributed versions pinned in requirements.txt) on this machine and on every "
                "grading node")


def import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise UsageError(f"{MISSING_DASK} ({exc})") from None
    return distributed


class DaskPool:
    """A Dask cluster's workers. ``address``: a scheduler's (``tcp://host:8786``, ``tls://...``, with
    Dask's own security configuration), or ``local:N``."""

    SUBMIT_AHEAD = 32  # at least this many tasks in flight; more on larger clusters (2 per worker thread)

    def __init__(self, address: str):
        self.distributed = import_distributed()
        self.local_workers = None
        if address.startswith("local:"):
            try:
                self.local_workers = int(address[len("local:"):])
            except ValueError:
                self.local_workers = 0
            if self.local_workers < 1:
                raise UsageError(f"--dask {address}: give local:N with N >= 1 worker processes, or a scheduler's address")
        elif "://" not in address and ":" not in address:
            raise UsageError(f"--dask {address}: give a scheduler's address (tcp://host:8786) or local:N")
        self.address = address
        self.cluster = self.client = None
        self.mode = "checked on each node"

    def describe(self) -> str:
        return f"on Dask {self.address} (sandbox: {self.mode})"

    def start(self) -> None:
        distributed = self.distributed
        if self.local_workers:
            self.mode = sandbox.sandbox_mode()
            if self.mode == "none":
                raise UsageError(
                    "--dask: the sandbox here has no network namespace (mode none), so learner code could reach the "
                    "Dask scheduler and the other workers: run on Linux where `unshare` works (see "
                    "autograder/grading/README.md), or grade without --dask")
            self.cluster = distributed.LocalCluster(
                n_workers=self.local_workers, threads_per_worker=1, processes=True,
                dashboard_address=":0",  # a free port: no clash with another cluster on this machine
                memory_limit=0,  # each submission's tree has its own limits (cgroup, RLIMIT_AS)
                silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(self.address, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise UsageError(f"--dask {self.address}: cannot reach the Dask scheduler ({exc})") from None

    def _ahead(self) -> int:
        try:
            threads = sum(self.client.nthreads().values())
        except Exception:  # noqa: BLE001 - only a hint for how far to read ahead
            threads = 0
        return max(self.SUBMIT_AHEAD, 2 * threads)

    def grade(self, assignment, notebooks, limits, fingerprint):
        """Submit a window of tasks ahead of the results (the coordinator holds only their notebooks'
        bytes), yield each result as it arrives, refill the window."""
        distributed = self.distributed
        pending = iter(sorted(notebooks))
        running: dict = {}
        finished = distributed.as_completed()
        ahead, checked = self._ahead(), time.monotonic()

        def submit() -> bool:
            student = next(pending, None)
            if student is None:
                return False
            task = remote.task_for(assignment, fingerprint, limits, read_submission(notebooks[student]))
            # No retries=: a task raises only when its node cannot grade (other checks, no sandbox), which a
            # second try elsewhere would hide. A dead worker's tasks are run again by the scheduler itself.
            future = self.client.submit(remote.grade_task, task, pure=False)
            running[future] = student
            finished.add(future)
            return True

        while len(running) < ahead and submit():
            pass
        try:
            for future in finished:
                student = running.pop(future)
                if time.monotonic() - checked > 5:  # a cluster that grows (dask-jobqueue) gets more work
                    ahead, checked = self._ahead(), time.monotonic()
                while len(running) < ahead and submit():
                    pass
                yield student, self._result(assignment, notebooks[student], future)
        finally:  # the caller stopped early (a node error, Ctrl-C): grade nothing more
            if running:
                self.client.cancel(list(running))

    def _result(self, assignment: str, path: str, future) -> GradeResult:
        if future.status == "finished":
            try:
                result = GradeResult.from_dict(future.result())
            except Exception as exc:  # noqa: BLE001 - a reply that is not a result: the grader's problem
                return runner.crashed(assignment, path, f"a grading node sent back no result: {exc!r}")
            result.notebook = path  # the node graded a private copy
            return result
        if future.status == "cancelled":
            return runner.crashed(assignment, path, "its Dask task was cancelled (the scheduler restarted?)")
        error = future.exception()
        if isinstance(error, self.distributed.KilledWorker):
            # Dask ran it again on other workers until its allowed-failures; a notebook cannot kill its
            # Dask worker (the sandbox holds it), so this is the cluster's problem: run again.
            return runner.crashed(assignment, path, f"every Dask worker that graded it died ({error})")
        if isinstance(error, remote.GradingNodeError):
            raise error
        raise remote.GradingNodeError(f"a grading node failed: {type(error).__name__}: {error}")

    def close(self) -> None:
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - closing after the results are saved
                    pass
        self.client = self.cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def scheduler_for(jobs: int, dask: str | None) -> LocalPool | DaskPool:
    return DaskPool(dask) if dask else LocalPool(jobs)
