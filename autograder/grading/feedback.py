"""Per-student feedback: one self-contained HTML page (no scripts, no CDN, no hidden test code).

The page speaks the notebook's language (``GradeResult.language``, from the notebook's metadata):
its own words, the checks' messages (rebuilt from ``TestResult.message_json``) and the notes, with
``<html lang>`` to match. A message that cannot be translated is shown in English.
"""
from __future__ import annotations

import html
import time

from attnlab.course.messages import _, render as in_language

from .runner import GradeResult
from .text import clean

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.45rem;text-align:left;vertical-align:top}
.ok{color:#0a6b2d}.bad{color:#a11}.msg{font-family:ui-monospace,monospace;font-size:.9rem;white-space:pre-wrap}
.total{font-size:1.2rem;font-weight:bold}.note{background:#fff6dd;padding:.6rem;border-radius:4px}
"""
HTML_LANG = {"en": "en", "zh_CN": "zh-CN"}  # a course language -> its BCP 47 tag


def render(student: str, result: GradeResult, note: str | None = None, lateness=None) -> str:
    """The page; ``lateness`` (a ``late.Lateness``) adds when the course received the notebook and
    the late penalty, and the score after it."""
    language = result.language if result.language in HTML_LANG else "en"

    def say(message) -> str:  # the page's own words, in the notebook's language
        return in_language(message, language)

    def esc(text) -> str:  # every string, whatever its origin, through the one gate of text.clean
        return html.escape(clean(text))

    passed, failed = esc(say(_("passed"))), esc(say(_("failed")))
    rows = []
    for test in result.tests:
        status = f'<span class="ok">{passed}</span>' if test.passed else f'<span class="bad">{failed}</span>'
        rows.append(f"<tr><td>{esc(test.name)}</td><td>{test.points:g} / {test.max_points:g}</td><td>{status}</td>"
                    f'<td class="msg">{esc(test.shown_message(language))}</td></tr>')
    notes = []
    if note:
        notes.append(f'<p class="note">{esc(say(note))}</p>')
    if lateness is not None:
        notes.append(f'<p class="note">{esc(say(lateness.describe()))}</p>')
    if result.fatal:
        could_not = esc(say(_("Your notebook could not be graded normally:")))
        notes.append(f'<p class="note">{could_not} {esc(result.shown_fatal())}</p>')
    if result.notebook_errors:
        cells = [esc(say(_("cell {cell}: {error}", cell=str(e.get("cell")), error=str(e.get("error")))))
                 for e in result.notebook_errors]
        items = "".join(f"<li>{cell}</li>" for cell in cells)
        raised = esc(say(_("When your notebook ran from top to bottom, these cells raised an error:")))
        notes.append(f"<p>{raised}</p><ul class=\"msg\">{items}</ul>")
    final = "" if lateness is None or not lateness.penalty else \
        say(_(" (after the late penalty: {score:g})", score=max(result.score - lateness.penalty, 0)))
    title = esc(say(_("{assignment}: feedback for {student}", assignment=result.assignment, student=student)))
    headers = "".join(f"<th>{esc(say(h))}</th>" for h in (_("Check"), _("Points"), _("Result"), _("What the grader found")))
    score = esc(say(_("Score: {score:g} / {max_score:g}", score=result.score, max_score=result.max_score)))
    about = html.escape(clean(say(_("Each check runs your functions on inputs chosen by the grader and compares the results with the\n"
                      "course's reference, in this order: type, shape, dtype, finiteness, values.\n"
                      "Graded {when}.", when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))), quote=False)  # text
    return f"""<!DOCTYPE html>
<html lang="{HTML_LANG[language]}"><head><meta charset="utf-8"><title>{title}</title>
<style>{STYLE}</style></head><body>
<h1>{title}</h1>
<p class="total">{score}{esc(final)}</p>
{''.join(notes)}
<table><thead><tr>{headers}</tr></thead>
<tbody>{''.join(rows)}</tbody></table>
<p>{about}</p>
</body></html>
"""
