"""Scores for a learning-management system: Canvas's and Moodle's grade-import CSV files.

A **roster** (the instructor's CSV, trusted) maps our student ids (the submission folders' names) to
the LMS's: a header with ``student`` and any of ``name``, ``canvas_id``, ``sis_user_id``,
``sis_login_id``, ``section`` (Canvas) and ``email``, ``idnumber``, ``username`` (Moodle).

- **Canvas**, "How do I import grades in the Gradebook?" (Canvas Instructor Guide): the columns
  ``Student, ID, SIS User ID, SIS Login ID, Section`` identify each student (Canvas matches on ``ID``
  or the SIS ids), then one column per assignment headed ``Name (assignment id)``, or the bare name
  to create a new assignment; an optional second row ``Points Possible`` gives the maximum.
- **Moodle**, "Grade import" (Moodle documentation, *Import grades from CSV*): one column that
  identifies the user, mapped at import to the user field of the same meaning (``Email address``,
  ``ID number`` or ``Username``), and one column per grade item; an optional feedback column.

Students graded but missing from the roster are not exported and are returned, so the caller can
say so; roster students without a grade get an empty cell (no change in the LMS, not a zero).
Files are UTF-8 with every field quoted as needed by ``csv`` (commas, quotes, line breaks and any
letters pass unchanged); the display fields (name, section) go through ``text.csv_cell``, so no
learner-visible text becomes a spreadsheet formula. Ids are left as the roster gives them: the LMS
matches on them.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from .text import csv_cell

CANVAS_FIELDS = ("name", "canvas_id", "sis_user_id", "sis_login_id", "section")
MOODLE_IDENTIFIERS = {"email": "Email address", "idnumber": "ID number", "username": "Username"}


class RosterError(ValueError):
    """The roster cannot be used as given: the message says what to fix."""


@dataclass
class Roster:
    rows: dict[str, dict[str, str]]  # our student id -> the roster's other columns

    @classmethod
    def read(cls, path: str) -> "Roster":
        with open(path, encoding="utf-8-sig", newline="") as handle:  # -sig: a BOM from a spreadsheet
            return cls.parse(handle.read(), path)

    @classmethod
    def parse(cls, text: str, where: str = "roster") -> "Roster":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "student" not in reader.fieldnames:
            raise RosterError(f"{where}: the first line must name the columns, one of them `student` "
                              f"(our student id), e.g. student,name,canvas_id,email; got {reader.fieldnames}")
        rows: dict[str, dict[str, str]] = {}
        for number, row in enumerate(reader, start=2):
            student = (row.get("student") or "").strip()
            if not student:
                raise RosterError(f"{where}, line {number}: no student id")
            if student in rows:
                raise RosterError(f"{where}, line {number}: student {student!r} is listed twice")
            rows[student] = {k: (v or "").strip() for k, v in row.items() if k and k != "student"}
        return cls(rows)

    def require(self, columns: tuple[str, ...], any_of: bool = False) -> None:
        present = set(next(iter(self.rows.values()), {}))
        missing = [c for c in columns if c not in present]
        if (any_of and len(missing) == len(columns)) or (not any_of and missing):
            need = " or ".join(columns) if any_of else ", ".join(missing)
            raise RosterError(f"the roster needs the column(s) {need} for this export")


def _render(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def canvas_csv(assignment_title: str, scores: dict[str, float], max_score: float, roster: Roster,
               canvas_assignment_id: str | None = None) -> tuple[str, list[str]]:
    """(CSV text, graded students missing from the roster) for Canvas's gradebook import."""
    roster.require(("canvas_id", "sis_user_id", "sis_login_id"), any_of=True)
    column = f"{assignment_title} ({canvas_assignment_id})" if canvas_assignment_id else assignment_title
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column]
    rows = [["Points Possible", "", "", "", "", _score(max_score)]]
    for student in sorted(roster.rows):
        r = roster.rows[student]
        rows.append([csv_cell(r.get("name") or student), r.get("canvas_id", ""), r.get("sis_user_id", ""),
                     r.get("sis_login_id", ""), csv_cell(r.get("section", "")), _score(scores.get(student))])
    return _render(header, rows), sorted(set(scores) - set(roster.rows))


def moodle_csv(grade_item: str, scores: dict[str, float], roster: Roster, identifier: str = "email",
               feedback: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """(CSV text, graded students missing from the roster) for Moodle's *Import grades from CSV*.

    ``identifier``: the roster column that Moodle maps to its user field (email, idnumber or username).
    """
    if identifier not in MOODLE_IDENTIFIERS:
        raise RosterError(f"identifier must be one of {', '.join(MOODLE_IDENTIFIERS)}, got {identifier!r}")
    roster.require((identifier,))
    header = [MOODLE_IDENTIFIERS[identifier], grade_item] + (["Feedback"] if feedback is not None else [])
    rows = []
    for student in sorted(roster.rows):
        key = roster.rows[student].get(identifier, "")
        if not key:
            continue  # Moodle cannot match an empty identifier
        row = [key, _score(scores.get(student))]
        if feedback is not None:
            row.append(csv_cell(feedback.get(student, "")))
        rows.append(row)
    return _render(header, rows), sorted(set(scores) - set(roster.rows))
