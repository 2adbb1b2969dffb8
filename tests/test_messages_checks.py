"""The grader's checks write every message a learner reads as a translatable template (issue 20):
``_("{call}: expected shape {expected}, got {got}", call=call, expected=..., got=...)`` from
``attnlab.course.messages``, so that ``pybabel extract -k _`` finds it and the feedback page can show it
in the notebook's language. An f-string, or English glued with ``+``, ``%`` or ``.format``, cannot be
extracted: this static scan of ``autograder/checks/test_ps*.py`` names the file and line of each one.

What counts as English: a string piece with two words in a row (``the weights``, ``tanh RNN``) or one of
a few common English words (``raised``, ``without``); a bare identifier, call or shape (``steps_to_fade(``,
``, attention=``) is code and stays as it is. Strings of
errors raised for the course's own mistakes (``RuntimeError``, ``ValueError``: never shown to a learner),
docstrings and the answers a learner types (``CHOICES``-like tuples, listed in VALUES) are not messages.
"""
from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_python

from attnlab.course.messages import fields

ROOT = Path(__file__).resolve().parents[1]
CHECKS = sorted((ROOT / "autograder" / "checks").glob("test_ps*.py"))
PROSE = re.compile(r"[A-Za-z]{2,}[,;:]? +[A-Za-z]{2,}")
# answers a learner types or values compared as data, not text a learner reads
VALUES = {"about the same", "self-attention", "one key", "permuted the same way", "changed otherwise"}
NOT_MESSAGES = {"RuntimeError", "ValueError", "TypeError", "KeyError", "NotImplementedError", "AssertionError"}


# one of these words alone makes a piece English ("{what} raised {error}", "{call} without a mask")
WORDS = {"the", "a", "an", "of", "to", "in", "is", "are", "or", "and", "with", "without", "raised", "expected",
         "got", "not", "should", "for", "on", "at", "by", "your", "yours", "must", "no", "but", "mode"}


def is_prose(text: str) -> bool:
    if text in VALUES:
        return False
    return bool(PROSE.search(text)) or (" " in text and any(word in WORDS for word in re.findall(r"\w+", text)))


def is_gettext(node) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_"


def callee(node) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


class Scan(ast.NodeVisitor):
    """Problems (line, what) of one check module."""

    def __init__(self):
        self.problems: list[tuple[int, str]] = []
        self.templates: list[tuple[int, str, set[str]]] = []  # (line, template, keyword names)

    def flag(self, node, what):
        self.problems.append((node.lineno, what))

    def generic_visit(self, node):
        # docstrings are not messages
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            node.body = node.body[1:]
        super().generic_visit(node)

    def visit_Raise(self, node):
        if isinstance(node.exc, ast.Call) and callee(node.exc) in NOT_MESSAGES:
            return  # the course's own error, not a learner's message
        self.generic_visit(node)

    def visit_Call(self, node):
        if is_gettext(node):
            if not node.args or not isinstance(node.args[0], ast.Constant) or not isinstance(node.args[0].value, str):
                self.flag(node, "_() needs a constant template as its first argument")
            else:
                if len(node.args) > 1 or any(k.arg is None for k in node.keywords):
                    self.flag(node, "_() takes the template and named parameters only")
                self.templates.append((node.lineno, node.args[0].value, {k.arg for k in node.keywords}))
            for keyword in node.keywords:
                self.visit(keyword.value)
            return
        name = callee(node)
        if name in ("CheckFailed", "true"):
            message = node.args[0] if name == "CheckFailed" else node.args[1] if len(node.args) > 1 else None
            if isinstance(message, ast.Constant) and isinstance(message.value, str):
                self.flag(message, f"a plain string as the message of {name}(): wrap it in _()")
        if name == "format" and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Constant) \
                and isinstance(node.func.value.value, str) and is_prose(node.func.value.value):
            self.flag(node, "English built with .format(): write _(template, name=value)")
        self.generic_visit(node)

    def visit_JoinedStr(self, node):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        if is_prose(text):
            self.flag(node, f"an f-string with English ({text[:40]!r}...): write _(template, name=value)")
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value)

    def visit_BinOp(self, node):
        if isinstance(node.op, (ast.Add, ast.Mod)):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and isinstance(side.value, str) and is_prose(side.value) \
                        or is_gettext(side):
                    self.flag(node, "English glued with + or %: write one _(template, name=value)")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and is_prose(node.value):
            self.flag(node, f"English not wrapped in _(): {node.value[:50]!r}")


def scan(path: Path | str) -> Scan:
    """The problems and templates of a check module (a path, or its source text)."""
    source = path.read_text(encoding="utf-8") if isinstance(path, Path) else path
    result = Scan()
    result.visit(ast.parse(source, filename=str(path)[:80]))
    return result


def test_the_scan_finds_each_kind_of_message_that_cannot_be_extracted():
    source = '''
def test_x(submission):
    """A docstring is not a message."""
    raise expect.CheckFailed(f"{call}: expected a tensor, got {got}")      # 3: an f-string
    expect.true(ok, "the weights must sum to 1")                           # 4: a plain string
    expect.true(ok, "{} is wrong".format(name))                            # 5: .format
    expect.true(ok, name + " is not the expected value")                   # 6: glued with +
    expect.true(ok, name + _(" is not the expected value"))                # 7: a message glued with +
    MISTAKES = {"interleaved": "heads are contiguous slices"}              # 8: a table entry
    expect.true(ok, _(f"{name} is wrong"))                                 # 9: a template that is not constant
    raise RuntimeError(f"the reference does not fall to {factor}")         # the course's own error: fine
    expect.true(ok, _("{name}: {got:g} is not the expected value", name=name, got=got))  # fine
    CHOICES = ("about the same", "grow")                                   # answers, not messages: fine
    expect.number(got, want, f"steps_to_fade({rho}, {factor})")            # code: fine
'''
    lines = sorted({line - 1 for line, _ in scan(source).problems})
    assert lines == [3, 4, 5, 6, 7, 8, 9], scan(source).problems
    _, template, names = next(t for t in scan(source).templates if t[1].startswith("{name}:"))
    assert fields(template) == names == {"name", "got"}


@pytest.mark.parametrize("path", CHECKS, ids=lambda p: p.stem)
def test_every_message_of_the_checks_is_an_extractable_template(path):
    problems = scan(path).problems
    assert not problems, "\n".join(f"{path.relative_to(ROOT)}:{line}: {what}" for line, what in problems)


@pytest.mark.parametrize("path", CHECKS, ids=lambda p: p.stem)
def test_every_template_formats_with_the_parameters_it_is_given(path):
    found = scan(path).templates
    problems = []
    for line, template, names in found:
        try:
            list(string.Formatter().parse(template))
        except ValueError as exc:
            problems.append(f"{line}: {template[:50]!r} is not a format string ({exc})")
            continue
        if any(not name.isidentifier() for name in fields(template)):
            problems.append(f"{line}: {template[:50]!r} has a positional or indexed field; name every field")
        if fields(template) != names:
            problems.append(f"{line}: {template[:50]!r} names {sorted(fields(template))}, is given {sorted(names)}")
        dummy = {name: 1.5 for name in names}
        try:
            template.format(**dummy)
        except (ValueError, KeyError, IndexError) as exc:
            try:  # a field without a numeric format spec takes any value
                template.format(**{name: "x" for name in names})
            except (ValueError, KeyError, IndexError):
                problems.append(f"{line}: {template[:50]!r} does not format ({exc})")
    assert not problems, "\n".join(f"{path.relative_to(ROOT)}:{p}" for p in problems)
    # pybabel's own extractor (what `pybabel extract -k _` runs) finds the same templates
    with path.open("rb") as handle:
        extracted = [m for _, f, m, _ in extract_python(handle, ["_"], [], {}) if f == "_"]
    assert sorted(m if isinstance(m, str) else m[0] for m in extracted) == sorted(t for _, t, _ in found)


@pytest.mark.parametrize("path", CHECKS, ids=lambda p: p.stem)
def test_the_tables_of_mistakes_hold_messages(path):
    """A module's tables (MISTAKES, contracts, hints: upper-case names) hold Messages, whose template and
    parameters reach the feedback page, not plain English."""
    import importlib

    from attnlab.course.messages import Message

    module = importlib.import_module(f"autograder.checks.{path.stem}")

    def texts(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in (*value.keys(), *value.values()):
                yield from texts(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from texts(item)

    plain = [f"{name}: {text[:50]!r}" for name, value in vars(module).items() if name.isupper()
             for text in texts(value) if is_prose(text) and not isinstance(text, Message)]
    assert not plain, f"{path.stem}: English outside _(): " + "; ".join(plain)
