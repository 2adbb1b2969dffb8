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


# ----------------------------------------------------------------------------------------------
# Through the CLI: the policy in the CSV, the feedback and nbgrader's gradebook; then the LMS export.

@pytest.fixture(scope="module")
def late_class(tmp_path_factory):
    from _grading import solved_notebook, write

    from autograder.grading.cli import main

    course = tmp_path_factory.mktemp("late")
    for student in ("alice", "bob", "carol"):
        write(solved_notebook("ps02_attention"), course / "handins" / student / "ps02_attention.ipynb")
    (course / "received.csv").write_text("student,received\nalice,2026-12-01T16:59:00Z\n"
                                         "bob,2026-12-01T19:30:00Z\ncarol,2026-12-02T10:00:00Z\n")
    (course / "extensions.csv").write_text("student,extension\ncarol,1d\n")
    code = main(["grade", "--assignment", "ps02_attention", "--course", str(course), "--quiet",
                 "--deadline", "2026-12-01T17:00Z", "--late-penalty", "2", "--per", "hour", "--late-cap", "50%",
                 "--received", str(course / "received.csv"), "--extensions", str(course / "extensions.csv"),
                 str(course / "handins")])
    assert code == 0
    return course


@pytest.mark.slow
def test_the_cli_applies_the_policy_to_the_csv_feedback_and_gradebook(late_class):
    import csv as csv_module

    from nbgrader.api import Gradebook

    rows = {r["student"]: r for r in csv_module.DictReader(open(late_class / "grades_ps02_attention.csv"))}
    full = float(rows["alice"]["score"])
    assert full > 6
    assert rows["alice"]["late_penalty"] == "0" and float(rows["alice"]["final_score"]) == full
    assert float(rows["bob"]["late_penalty"]) == 6, "2h30 late: three started hours at 2 points"
    assert float(rows["bob"]["final_score"]) == full - 6
    assert rows["carol"]["late_penalty"] == "0", "a day's extension: on time"
    page = (late_class / "feedback" / "bob" / "ps02_attention" / "ps02_attention.html").read_text()
    assert "2.5 h after your deadline" in page and "late penalty 6 point(s)" in page
    gb = Gradebook(f"sqlite:///{late_class / 'gradebook.db'}", course_id="attention-from-scratch")
    try:
        bob = gb.find_submission("ps02_attention", "bob")
        assert bob.late_submission_penalty == 6 and bob.timestamp == dt.datetime(2026, 12, 1, 19, 30)
        assert gb.find_assignment("ps02_attention").duedate == dt.datetime(2026, 12, 1, 17, 0)
        assert gb.find_submission("ps02_attention", "carol").extension == dt.timedelta(days=1)
    finally:
        gb.close()


@pytest.mark.slow
def test_export_writes_the_final_scores_for_canvas_and_moodle(late_class):
    import csv as csv_module

    from autograder.grading.cli import main

    (late_class / "roster.csv").write_text("student,name,canvas_id,email\nalice,\"Liddell, Alice\",11,a@x.org\n"
                                           "bob,Bob,12,b@x.org\ndave,Dave,14,d@x.org\n")
    assert main(["export", "--assignment", "ps02_attention", "--to", "canvas", "--roster", str(late_class / "roster.csv"),
                 "--course", str(late_class), "--canvas-assignment-id", "99"]) == 0
    table = list(csv_module.reader(open(late_class / "canvas_ps02_attention.csv")))
    assert table[0][-1] == "ps02_attention (99)"
    scores = {row[1]: row[-1] for row in table[2:]}
    full = float(scores["11"])
    assert float(scores["12"]) == full - 6, "the late penalty is taken off"
    assert scores["14"] == "", "dave handed in nothing: no grade"
    assert main(["export", "--assignment", "ps02_attention", "--to", "moodle", "--roster", str(late_class / "roster.csv"),
                 "--course", str(late_class)]) == 0
    moodle = list(csv_module.reader(open(late_class / "moodle_ps02_attention.csv")))
    assert moodle[0] == ["Email address", "ps02_attention"] and ["b@x.org", f"{full - 6:g}"] in moodle


@pytest.mark.slow
def test_a_policy_given_later_reaches_the_cached_students_feedback(late_class):
    """Grading again with a stricter policy grades nothing again (the notebooks did not change) but
    every page, the CSV and the gradebook follow the new policy."""
    import csv as csv_module

    from autograder.grading.cli import main

    code = main(["grade", "--assignment", "ps02_attention", "--course", str(late_class), "--quiet",
                 "--deadline", "2026-12-01T17:00Z", "--late-penalty", "3", "--per", "hour",
                 "--received", str(late_class / "received.csv"), str(late_class / "handins")])
    assert code == 0
    rows = {r["student"]: r for r in csv_module.DictReader(open(late_class / "grades_ps02_attention.csv"))}
    assert float(rows["bob"]["late_penalty"]) == 9 and float(rows["carol"]["late_penalty"]) > 0  # no extension now
    page = (late_class / "feedback" / "bob" / "ps02_attention" / "ps02_attention.html").read_text()
    assert "late penalty 9 point(s)" in page


def test_late_options_without_a_deadline_are_a_usage_error(tmp_path):
    from autograder.grading.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["grade", "--assignment", "ps02_attention", "--course", str(tmp_path), "--grace", "1h", str(tmp_path)])
    assert exit_info.value.code == 2
