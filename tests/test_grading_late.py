"""The late-work policy (autograder/grading/late.py): both sides of the deadline, grace, cap, extensions,
and only times the learner cannot set."""
from __future__ import annotations

import datetime as dt
import os

import pytest

from autograder.grading.late import (LatePolicy, LatePolicyError, parse_duration, parse_time, read_extensions,
                                     read_received, received_from_exchange)

UTC = dt.timezone.utc
DEADLINE = dt.datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def at(**delta) -> dt.datetime:
    return DEADLINE + dt.timedelta(**delta)


def test_on_time_and_just_late():
    policy = LatePolicy(DEADLINE, penalty="10%", per="day")
    assert policy.penalty_for("a", at(seconds=0), 17, 17) == (0.0, dt.timedelta(0))
    assert policy.penalty_for("a", at(minutes=-1), 17, 17)[0] == 0.0
    lost, late = policy.penalty_for("a", at(seconds=1), 17, 17)
    assert lost == pytest.approx(1.7) and late == dt.timedelta(seconds=1), "a started day counts whole"
    assert policy.penalty_for("a", at(days=1, seconds=1), 17, 17)[0] == pytest.approx(3.4)


def test_points_per_hour_grace_and_cap():
    policy = LatePolicy(DEADLINE, penalty="2", per="hour", grace=dt.timedelta(minutes=15), cap="5")
    assert policy.penalty_for("a", at(minutes=15), 10, 17)[0] == 0.0, "inside the grace period"
    assert policy.penalty_for("a", at(minutes=16), 10, 17)[0] == 2.0
    assert policy.penalty_for("a", at(hours=1, minutes=16), 10, 17)[0] == 4.0
    assert policy.penalty_for("a", at(hours=10), 10, 17)[0] == 5.0, "capped"
    assert policy.penalty_for("a", at(hours=10), 1, 17)[0] == 1.0, "never more than the score"
    assert LatePolicy(DEADLINE, penalty="25%", per="day", cap="50%").penalty_for("a", at(days=5), 17, 17)[0] == 8.5


def test_an_extension_moves_one_students_deadline():
    policy = LatePolicy(DEADLINE, penalty="10%", extensions={"bob": dt.timedelta(days=2)})
    assert policy.penalty_for("bob", at(days=1), 17, 17)[0] == 0.0
    assert policy.penalty_for("alice", at(days=1), 17, 17)[0] > 0
    assert policy.penalty_for("bob", at(days=2, hours=1), 17, 17)[0] == pytest.approx(1.7)
    assert policy.due("bob") == at(days=2)


@pytest.mark.parametrize("call, message", [
    (lambda: LatePolicy(dt.datetime(2026, 12, 1)), "needs a time zone"),
    (lambda: LatePolicy(DEADLINE, per="week"), "per must be one of"),
    (lambda: LatePolicy(DEADLINE, penalty="ten"), "not a number of points"),
    (lambda: parse_time("2026-12-01 17:00"), "has no time zone"),
    (lambda: parse_time("yesterday"), "not an ISO 8601 time"),
    (lambda: parse_duration("2 weeks"), "not a duration"),
])
def test_bad_policies_say_what_to_write(call, message):
    with pytest.raises(LatePolicyError, match=message):
        call()


def test_csv_files_of_extensions_and_received_times(tmp_path):
    (tmp_path / "ext.csv").write_text("student,extension\nbob,2d\ncarol,36h\n", encoding="utf-8")
    assert read_extensions(str(tmp_path / "ext.csv")) == {"bob": dt.timedelta(days=2), "carol": dt.timedelta(hours=36)}
    (tmp_path / "rec.csv").write_text("student,received\nalice,2026-12-01T16:59:00Z\nbob,2026-12-01T18:00+01:00\n")
    received = read_received(str(tmp_path / "rec.csv"))
    assert received["alice"] == at(minutes=-1) and received["bob"] == DEADLINE
    (tmp_path / "bad.csv").write_text("name,when\n")
    with pytest.raises(LatePolicyError, match="student,received"):
        read_received(str(tmp_path / "bad.csv"))


def test_the_exchange_time_is_the_kernels_not_the_learners(tmp_path):
    """A learner who backdates their files and writes an old timestamp in the entry's name changes nothing:
    the kernel's ctime of the inbound entry is what counts."""
    inbound = tmp_path / "inbound"
    entry = inbound / "alice+ps02_attention+2020-01-01 00:00:00.000000 UTC+abc"
    entry.mkdir(parents=True)
    (entry / "timestamp.txt").write_text("2020-01-01 00:00:00.000000 UTC")
    before = dt.datetime.now(UTC) - dt.timedelta(seconds=5)
    os.utime(entry, (0, 0))  # mtime and atime: 1970, as a learner could set them
    (inbound / "bob+ps03_self_attention+x+y").mkdir()  # another assignment
    os.symlink(entry, inbound / "mallory+ps02_attention+x+y")  # a link is never followed
    received = received_from_exchange(str(inbound), "ps02_attention")
    assert set(received) == {"alice"}
    assert received["alice"] >= before, "ctime cannot be set back by the learner"
