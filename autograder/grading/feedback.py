"""Per-student feedback: one self-contained HTML page (no scripts, no CDN, no hidden test code)."""
from __future__ import annotations

import html
import time

from .runner import GradeResult
from .text import clean

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.45rem;text-align:left;vertical-align:top}
.ok{color:#0a6b2d}.bad{color:#a11}.msg{font-family:ui-monospace,monospace;font-size:.9rem;white-space:pre-wrap}
.total{font-size:1.2rem;font-weight:bold}.note{background:#fff6dd;padding:.6rem;border-radius:4px}
"""


def render(student: str, result: GradeResult, note: str | None = None, lateness=None) -> str:
    """The page; ``lateness`` (a ``late.Lateness``) adds when the course received the notebook and
    the late penalty, and the score after it."""
    def esc(text) -> str:  # every string, whatever its origin, through the one gate of text.clean
        return html.escape(clean(text))

    rows = []
    for test in result.tests:
        status = '<span class="ok">passed</span>' if test.passed else '<span class="bad">failed</span>'
        rows.append(f"<tr><td>{esc(test.name)}</td><td>{test.points:g} / {test.max_points:g}</td><td>{status}</td>"
                    f'<td class="msg">{esc(test.message)}</td></tr>')
    notes = []
    if note:
        notes.append(f'<p class="note">{esc(note)}</p>')
    if lateness is not None:
        notes.append(f'<p class="note">{esc(lateness.describe())}</p>')
    if result.fatal:
        notes.append(f'<p class="note">Your notebook could not be graded normally: {esc(result.fatal)}</p>')
    if result.notebook_errors:
        items = "".join(f"<li>cell {esc(str(e.get('cell')))}: {esc(str(e.get('error')))}</li>" for e in result.notebook_errors)
        notes.append(f"<p>When your notebook ran from top to bottom, these cells raised an error:</p><ul class=\"msg\">{items}</ul>")
    final = "" if lateness is None or not lateness.penalty else \
        f" (after the late penalty: {max(result.score - lateness.penalty, 0):g})"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(result.assignment)}: feedback for {esc(student)}</title>
<style>{STYLE}</style></head><body>
<h1>{esc(result.assignment)}: feedback for {esc(student)}</h1>
<p class="total">Score: {result.score:g} / {result.max_score:g}{final}</p>
{''.join(notes)}
<table><thead><tr><th>Check</th><th>Points</th><th>Result</th><th>What the grader found</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>
<p>Each check runs your functions on inputs chosen by the grader and compares the results with the
course's reference, in this order: type, shape, dtype, finiteness, values.
Graded {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.</p>
</body></html>
"""
