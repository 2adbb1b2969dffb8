"""Collect a class: one ``Job`` per student from the folders an instructor names, and the stable
shard each student belongs to.

Everything inside the folders given is the learners' and is read as hostile (GRADING.md): no link
is followed (a linked notebook or student folder scores 0 with a note), no name goes into a glob
pattern, a student's folder is searched only ``MAX_DEPTH`` deep, and every name passes
``text.student_id`` / ``text.shown_name`` before it is shown.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass

from .submission import MAX_NOTEBOOK_BYTES
from .text import clean, shown_name, student_id


class UsageError(SystemExit):
    """The instructor's command cannot run as given (exit code 2); never a learner's doing."""


@dataclass
class Job:
    student: str
    notebook: str | None  # None: nothing gradable was found
    note: str | None = None  # e.g. "graded `copy.ipynb` (expected ps02_attention.ipynb)"
    submitted_folder: str | None = None  # submitted/<student>/<assignment>/ of an nbgrader exchange


# What `nbgrader release_feedback` needs beside the feedback HTML, copied from the submission.
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")

# A student's folder is searched this deep (folder/ps02/ps02.ipynb is depth 1), looking at no more
# than this many entries: a tree that is deep, huge, or loops through links cannot stall the run.
MAX_DEPTH = 4
MAX_ENTRIES = 10_000
LINK_NOTE = "is a link: not graded (submit the notebook itself, not a link to one)"


def _scan(folder: str) -> tuple[list[str], list[str]]:
    """Notebooks and links in a student's folder, as paths relative to it: regular files only,
    and no link is ever followed (a link could point at solutions/ or at another student)."""
    notebooks, links, seen = [], [], 0
    stack = [("", 0)]
    while stack:
        relative, depth = stack.pop()
        with os.scandir(os.path.join(folder, relative)) as entries:
            for entry in entries:
                seen += 1
                if seen > MAX_ENTRIES:
                    raise OSError(f"more than {MAX_ENTRIES} files")
                if entry.name.startswith("."):  # hidden, .ipynb_checkpoints
                    continue
                path = os.path.join(relative, entry.name)
                if entry.is_symlink():
                    links.append(path)
                elif entry.is_dir(follow_symlinks=False):
                    if depth < MAX_DEPTH:
                        stack.append((path, depth + 1))
                elif entry.is_file(follow_symlinks=False) and entry.name.endswith(".ipynb"):
                    notebooks.append(path)
    return sorted(notebooks), sorted(links)


def _inside(path: str, folder: str) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, root]) == root


def find_notebook(folder: str, assignment: str) -> tuple[str | None, str | None]:
    """(path, note) of the notebook in a student's folder; a renamed one is accepted with a note.
    The notebook is a regular file whose real path lies inside the folder: links are refused."""
    if os.path.islink(folder):
        return None, f"your submission folder {LINK_NOTE}"
    try:
        notebooks, links = _scan(folder)
    except OSError as exc:
        return None, f"your submission folder could not be read ({clean(exc.strerror or exc, one_line=True)}): not graded"
    preferred = (assignment + ".ipynb", os.path.join(assignment, assignment + ".ipynb"))
    chosen = next((p for p in preferred if p in notebooks), None)
    note = None
    if chosen is None:
        linked = next((p for p in preferred if p in links), None)
        if linked:
            return None, f"{shown_name(linked)} {LINK_NOTE}"
        if len(notebooks) == 1:
            chosen = notebooks[0]
            note = f"graded {shown_name(chosen)}: the notebook should be named {assignment}.ipynb"
        elif not notebooks:
            ignored = f" (links are not followed: {', '.join(shown_name(p) for p in links[:5])})" if links else ""
            return None, f"no notebook found: submit {assignment}.ipynb{ignored}"
        else:
            return None, f"{len(notebooks)} notebooks found and none is named {assignment}.ipynb: submit exactly one"
    path = os.path.join(folder, chosen)
    if not _inside(path, folder):  # a folder swapped for a link since the scan
        return None, f"{shown_name(chosen)} {LINK_NOTE}"
    return path, note


def _entries(folder: str) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: os.fsencode(e.name))


def collect(assignment: str, paths: list[str], submitted: str | None) -> list[Job]:
    """One job per student. The paths given on the command line are the instructor's and may be
    links; everything found inside them is a learner's and is never followed through a link."""
    jobs: list[Job] = []
    if submitted:
        if not os.path.isdir(submitted):
            raise UsageError(f"--submitted {submitted}: no such folder")
        for entry in _entries(submitted):
            student = student_id(entry.name)
            if entry.is_symlink():
                jobs.append(Job(student, None, f"your submission folder {LINK_NOTE}"))
            elif entry.is_dir(follow_symlinks=False):
                target = os.path.join(entry.path, assignment)
                if os.path.islink(target):
                    jobs.append(Job(student, None, f"your {assignment} folder {LINK_NOTE}"))
                elif os.path.isdir(target):
                    notebook, note = find_notebook(target, assignment)
                    jobs.append(Job(student, notebook, note, target))
                else:
                    jobs.append(Job(student, None, f"no {assignment} folder in the submission"))
    for path in paths:
        if os.path.isfile(path):
            stem = os.path.splitext(os.path.basename(path))[0]
            name = os.path.basename(os.path.dirname(os.path.abspath(path))) if stem == assignment else stem
            jobs.append(Job(student_id(name), path))
        elif os.path.isdir(path):
            for entry in _entries(path):
                notebook_file = entry.name.endswith(".ipynb") and not entry.is_dir(follow_symlinks=False)
                student = student_id(entry.name[:-len(".ipynb")] if notebook_file else entry.name)
                if entry.is_symlink():
                    what = f"your notebook {shown_name(entry.name)}" if notebook_file else "your submission folder"
                    jobs.append(Job(student, None, f"{what} {LINK_NOTE}"))
                elif entry.is_file(follow_symlinks=False) and notebook_file:
                    jobs.append(Job(student, entry.path))
                elif entry.is_dir(follow_symlinks=False):
                    notebook, note = find_notebook(entry.path, assignment)
                    jobs.append(Job(student, notebook, note))
        else:
            raise UsageError(f"{clean(path, one_line=True)}: no such file or folder")
    seen: dict[str, int] = {}
    for job in jobs:
        if job.student in seen:
            raise UsageError(f"two submissions for student {job.student!r}: rename one")
        seen[job.student] = 1
    return jobs


# ------------------------------------------------------------------------------------ shards
def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` -> (K, N): shard K of N, numbered from 0 like a Kubernetes Indexed Job's
    JOB_COMPLETION_INDEX and ``sbatch --array=0-(N-1)``."""
    k, slash, n = text.partition("/")
    try:
        k_value, n_value = int(k), int(n)
    except ValueError:
        k_value = n_value = -1
    if not slash or n_value < 1 or not 0 <= k_value < n_value:
        raise UsageError(f"--shard {clean(text, one_line=True)}: give K/N with 0 <= K < N, e.g. --shard 0/4 ... --shard 3/4 "
                         "(shards are numbered from 0, as in a Kubernetes Indexed Job and `sbatch --array=0-3`)")
    return k_value, n_value


def shard_of(student: str, shards: int) -> int:
    """The shard of a student id: stable across runs, machines and Python versions (no ``hash()``
    salt), so that every node of a job array agrees without talking to the others."""
    digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % shards


# ------------------------------------------------------------------------------------ reading
def open_regular(path: str):
    """A learner's file opened for reading without following a link or blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path}: not a regular file")
    return os.fdopen(fd, "rb")


def read_submission(path: str) -> dict:
    """A notebook as plain data that can travel to another machine, read as ``submission.read_notebook``
    reads it (never through a link, never from a FIFO, at most ``MAX_NOTEBOOK_BYTES``):
    ``{"name": bytes, "data": bytes}``; or, for a file that cannot be read, what a grading node needs
    to meet the same condition and give the same message: ``"link": True``, ``"size": n`` (too
    large: a sparse file of that size) or neither (nothing there)."""
    payload: dict = {"name": os.fsencode(os.path.basename(path))}
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(MAX_NOTEBOOK_BYTES + 1) if size <= MAX_NOTEBOOK_BYTES else b""
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            payload["link"] = True
        return payload
    if size > MAX_NOTEBOOK_BYTES or len(data) > MAX_NOTEBOOK_BYTES:
        payload["size"] = max(size, len(data))
    else:
        payload["data"] = data
    return payload


def exchange_file(folder: str, name: str) -> str | None:
    """nbgrader's timestamp.txt or submission_secret.txt of this submission: a small regular file
    in the submission's own folder, never one reached through a link."""
    try:
        with open_regular(os.path.join(folder, name)) as handle:
            data = handle.read(4096)
    except OSError:
        return None
    return None if len(data) >= 4096 else clean(data.decode("utf-8", "replace"))
