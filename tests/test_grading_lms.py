"""Exports for Canvas and Moodle (autograder/grading/lms.py): their documented columns, any name."""
from __future__ import annotations

import csv
import io

import pytest

from autograder.grading.lms import Roster, RosterError, canvas_csv, moodle_csv

ROSTER = (
    "student,name,canvas_id,sis_user_id,sis_login_id,section,email\n"
    'alice,"Liddell, Alice",101,S1,alice,"A, morning",alice@example.org\n'
    'bob,"Bob ""the builder"" O\'Neil",102,S2,bob,B,bob@example.org\n'
    "zoe,Zoë Ünal-Çelik 张伟,103,S3,zoe,B,zoe@example.org\n"
    "eve,=HYPERLINK(\"x\"),104,S4,eve,B,\n"
)
SCORES = {"alice": 17.0, "bob": 8.5, "mallory": 3.0}  # mallory handed in but is not on the roster


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_canvas_columns_points_possible_and_every_name_intact():
    text, missing = canvas_csv("ps02 attention", SCORES, 17, Roster.parse(ROSTER), canvas_assignment_id="5501")
    table = rows(text)
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "ps02 attention (5501)"]
    assert table[1] == ["Points Possible", "", "", "", "", "17"]
    by_id = {r[1]: r for r in table[2:]}
    assert by_id["101"] == ["Liddell, Alice", "101", "S1", "alice", "A, morning", "17"]
    assert by_id["102"][0] == "Bob \"the builder\" O'Neil" and by_id["102"][5] == "8.5"
    assert by_id["103"][0] == "Zoë Ünal-Çelik 张伟" and by_id["103"][5] == "", "no grade: an empty cell, not 0"
    assert by_id["104"][0].startswith("'="), "a name that a spreadsheet would run is quoted"
    assert missing == ["mallory"]


def test_moodle_identifier_and_grade_item():
    text, missing = moodle_csv("ps02_attention", SCORES, Roster.parse(ROSTER), identifier="email",
                               feedback={"alice": "all checks passed"})
    table = rows(text)
    assert table[0] == ["Email address", "ps02_attention", "Feedback"]
    assert ["alice@example.org", "17", "all checks passed"] in table
    assert ["bob@example.org", "8.5", ""] in table
    assert ["zoe@example.org", "", ""] in table
    assert all(r[0] for r in table[1:]), "a student without an e-mail address cannot be matched: left out"
    assert missing == ["mallory"]
    assert rows(moodle_csv("x", SCORES, Roster.parse("student,idnumber\nalice,77\n"), identifier="idnumber")[0]) == \
        [["ID number", "x"], ["77", "17"]]


@pytest.mark.parametrize("roster, message", [
    ("name,email\nAlice,a@x\n", "must name the columns, one of them `student`"),
    ("student,email\nalice,a@x\nalice,b@x\n", "listed twice"),
    ("student,email\n,a@x\n", "no student id"),
])
def test_a_bad_roster_says_what_to_fix(roster, message):
    with pytest.raises(RosterError, match=message):
        Roster.parse(roster)


def test_an_export_needs_its_columns():
    with pytest.raises(RosterError, match="canvas_id or sis_user_id or sis_login_id"):
        canvas_csv("a", SCORES, 1, Roster.parse("student,email\nalice,a@x\n"))
    with pytest.raises(RosterError, match="username"):
        moodle_csv("a", SCORES, Roster.parse("student,email\nalice,a@x\n"), identifier="username")
