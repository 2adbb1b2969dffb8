"""Text that came from learners, made safe to write anywhere: the one gate for every string that
goes into feedback, the CSV, the gradebook, a state file or the console.

Learners choose file and folder names (bytes: maybe not UTF-8, maybe 255 of them, maybe ``=cmd``
or an escape sequence) and the messages of their exceptions (maybe a lone surrogate). None of that
may stop a run, move a terminal's cursor, or become a spreadsheet formula.
"""
from __future__ import annotations

import hashlib
import re

# C0 and C1 controls, DEL, and the bidirectional overrides and isolates ("Trojan source").
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_LINE_BREAKS = re.compile(r"[\t\n\r]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_STUDENT_ID = 128  # nbgrader's Student.id is a String(128)
MAX_NAME_BYTES = 200  # a file name made from a student id, with room for ".json" under NAME_MAX (255)


def clean(text, one_line: bool = False) -> str:
    """Printable, encodable text: a lone surrogate becomes U+FFFD, control characters go (escape
    sequences then print as harmless text); newlines and tabs stay unless ``one_line``."""
    text = _SURROGATE.sub("\ufffd", str(text))
    if one_line:
        text = _LINE_BREAKS.sub(" ", text)
    return _CONTROL.sub("", text)


def shown_name(name: str) -> str:
    """A file name as a learner would recognise it: bytes that are not UTF-8 shown as ``\\xe9``."""
    out = []
    for char in name:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8 (os.fsdecode's surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF or _CONTROL.match(char) or char in "\t\n\r":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def student_id(name: str) -> str:
    """The gradebook id of a learner named by a file or folder: printable, valid UTF-8, distinct
    names stay distinct, at most ``MAX_STUDENT_ID`` characters (a long one ends with a hash)."""
    shown = shown_name(name)
    if len(shown) <= MAX_STUDENT_ID:
        return shown
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return shown[:MAX_STUDENT_ID - 17] + "-" + digest


def file_name(student: str) -> str:
    """A file or folder name for a student's feedback and cached result: the id itself when it is a
    plain name that fits (nbgrader's release_feedback needs feedback/<student id>/), else a short
    prefix and a hash."""
    encoded = student.encode("utf-8", "surrogatepass")
    if (student not in ("", ".", "..") and "/" not in student and "\0" not in student
            and len(encoded) <= MAX_NAME_BYTES and not _SURROGATE.search(student)):
        return student
    digest = hashlib.sha256(encoded).hexdigest()[:16]
    prefix = clean(student).replace("/", "_").encode()[:64].decode("utf-8", "ignore").lstrip(".")
    return f"{prefix}-{digest}"


def csv_cell(value) -> str:
    """One CSV cell: a number stays a number (``-1.5``); text is one clean line and, when a
    spreadsheet would read it as a formula, starts with ``'`` instead."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    text = clean(value, one_line=True)
    return "'" + text if text.lstrip(" ").startswith(_FORMULA_START) else text
