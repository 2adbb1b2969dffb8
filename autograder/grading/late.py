"""Late work: a deadline, a grace period, a penalty per started hour or day, a cap, extensions.

**Which time counts.** Only a time the learner cannot set: when the course *received* the
submission. ``timestamp.txt`` (written by ``nbgrader submit`` on the learner's side) and a file's
modification time are the learner's to choose, so they are shown for information and never used.

- *nbgrader exchange*: ``nbgrader submit`` creates ``<exchange>/<course>/inbound/<student>+<assignment>+...``.
  The kernel sets that folder's change time (ctime) when it is created and whenever it changes; no
  one but root can set it to an earlier time, so the learner cannot backdate it.
  :func:`received_from_exchange` reads, per student, the latest such ctime (their last submission).
- *plain folders* (downloaded from an LMS or collected by hand): the LMS recorded the time; give it
  as a CSV ``student,received`` (ISO 8601 with a time zone, as LMSs export it) to
  :func:`read_received`. Without one, no penalty is applied, and the grader says so.

**The penalty.** With ``late = received - (deadline + extension + grace)`` > 0, every *started*
hour (or day) costs ``penalty`` points, or ``penalty`` percent of the maximum when it is given as a
percentage; the total is capped at ``cap`` (points, or percent of the maximum), and never exceeds
the score. It is recorded as nbgrader's late-submission penalty (the gradebook keeps the raw
score), shown in the feedback and in the CSV.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import os
import re
from dataclasses import dataclass, field

from attnlab.course.messages import Message, _

UNITS = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s*$")


class LatePolicyError(ValueError):
    """The policy or a time in it cannot be used as given: the message says what to write."""


def parse_time(text: str, where: str = "time") -> dt.datetime:
    """An ISO 8601 time with a time zone (``2026-12-01T17:00+01:00`` or ``...Z``) -> aware datetime."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise LatePolicyError(f"{where}: {text!r} is not an ISO 8601 time such as 2026-12-01T17:00+01:00") from None
    if value.tzinfo is None:
        raise LatePolicyError(f"{where}: {text!r} has no time zone; add one, e.g. {text.strip()}+00:00 or Z")
    return value


def parse_duration(text: str, where: str = "duration") -> dt.timedelta:
    """``30m``, ``2h``, ``1.5d`` -> timedelta."""
    match = DURATION.match(text or "")
    if not match:
        raise LatePolicyError(f"{where}: {text!r} is not a duration such as 30m, 2h or 3d")
    amount, unit = float(match.group(1)), match.group(2)
    return dt.timedelta(minutes=amount) if unit in ("m", "min") else \
        dt.timedelta(hours=amount) if unit == "h" else dt.timedelta(days=amount)


def _amount(text: str, where: str) -> tuple[float, bool]:
    """'10' -> (10, False) points; '10%' -> (10, True) percent of the maximum."""
    percent = str(text).strip().endswith("%")
    try:
        value = float(str(text).strip().rstrip("%"))
    except ValueError:
        raise LatePolicyError(f"{where}: {text!r} is not a number of points (2) or a percentage (10%)") from None
    if value < 0:
        raise LatePolicyError(f"{where}: {text!r} is negative")
    return value, percent


@dataclass(frozen=True)
class LatePolicy:
    deadline: dt.datetime
    penalty: str = "10%"  # per started unit: points ("2") or percent of the maximum ("10%")
    per: str = "day"
    grace: dt.timedelta = dt.timedelta(0)
    cap: str | None = None  # the most a submission can lose: points or percent of the maximum; None: all
    extensions: dict[str, dt.timedelta] = field(default_factory=dict)

    def __post_init__(self):
        if self.deadline.tzinfo is None:
            raise LatePolicyError("the deadline needs a time zone, e.g. 2026-12-01T17:00+01:00")
        if self.per not in UNITS:
            raise LatePolicyError(f"per must be one of {', '.join(UNITS)}, got {self.per!r}")
        _amount(self.penalty, "penalty")
        if self.cap is not None:
            _amount(self.cap, "cap")

    def due(self, student: str) -> dt.datetime:
        """The student's own deadline: the course's, plus their extension (grace not included)."""
        return self.deadline + self.extensions.get(student, dt.timedelta(0))

    def penalty_for(self, student: str, received: dt.datetime, score: float, max_score: float) -> tuple[float, dt.timedelta]:
        """(points lost, how late) for a submission received at ``received`` scoring ``score``."""
        late = received - (self.due(student) + self.grace)
        if late <= dt.timedelta(0):
            return 0.0, dt.timedelta(0)
        units = math.ceil(late / UNITS[self.per])  # a started hour (or day) counts whole
        amount, percent = _amount(self.penalty, "penalty")
        lost = units * (amount * max_score / 100 if percent else amount)
        if self.cap is not None:
            cap, cap_percent = _amount(self.cap, "cap")
            lost = min(lost, cap * max_score / 100 if cap_percent else cap)
        return round(min(lost, score), 6), late


def read_extensions(path: str) -> dict[str, dt.timedelta]:
    """A CSV ``student,extension`` (a duration: 2d, 36h) -> {student: timedelta}."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or {"student", "extension"} - set(reader.fieldnames):
            raise LatePolicyError(f"{path}: the first line must be `student,extension` (e.g. alice,2d)")
        return {row["student"].strip(): parse_duration(row["extension"], f"{path}, {row['student']}")
                for row in reader if (row.get("student") or "").strip()}


def read_received(path: str) -> dict[str, dt.datetime]:
    """A CSV ``student,received`` (ISO 8601 with a time zone), e.g. exported from the LMS."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or {"student", "received"} - set(reader.fieldnames):
            raise LatePolicyError(f"{path}: the first line must be `student,received` "
                                  "(e.g. alice,2026-12-01T16:59:00+00:00)")
        return {row["student"].strip(): parse_time(row["received"], f"{path}, {row['student']}")
                for row in reader if (row.get("student") or "").strip()}


def received_from_exchange(inbound: str, assignment: str) -> dict[str, dt.datetime]:
    """{student: time of their last submission} from an nbgrader exchange's ``inbound`` folder.

    Entries are ``<student>+<assignment>+<timestamp>+<random>``; the time is the entry's ctime
    (set by the kernel, never earlier than the real submission), not the timestamp in its name or
    in ``timestamp.txt`` (both written by the learner's process). No link is followed.
    """
    received: dict[str, dt.datetime] = {}
    with os.scandir(inbound) as entries:
        for entry in entries:
            parts = entry.name.split("+")
            if len(parts) < 3 or parts[1] != assignment or entry.is_symlink():
                continue
            ctime = dt.datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_ctime, dt.timezone.utc)
            student = parts[0]
            if student not in received or ctime > received[student]:
                received[student] = ctime
    return received


@dataclass(frozen=True)
class Lateness:
    """One student's outcome under the policy: what the CSV, the feedback and the gradebook show."""
    received: dt.datetime
    due: dt.datetime
    late: dt.timedelta
    penalty: float

    def describe(self) -> Message:
        """For the learner's feedback (a translatable message)."""
        when = self.received.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        if self.late <= dt.timedelta(0):
            return _("Received {when}, on time.", when=when)
        return _("Received {when}, {hours:.1f} h after your deadline ({due}): late penalty {penalty:g} point(s).",
                 when=when, hours=self.late.total_seconds() / 3600, penalty=self.penalty,
                 due=self.due.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


@dataclass
class LateWork:
    """A policy and the trusted receipt times it applies to (see the module's docstring)."""
    policy: LatePolicy
    received: dict[str, dt.datetime]

    def outcome(self, student: str, score: float, max_score: float) -> Lateness | None:
        """None when no trusted receipt time is known for the student (no penalty is applied)."""
        if student not in self.received:
            return None
        lost, late = self.policy.penalty_for(student, self.received[student], score, max_score)
        return Lateness(self.received[student], self.policy.due(student), late, lost)
