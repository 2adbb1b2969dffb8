"""Learner-facing messages in the learner's language (issue 20): written with ``_()`` so that they can be
extracted, carried from the grading process to the grader as ``Message.to_json()`` beside the English
text, rebuilt safely on the trusted side and shown in the notebook's language (its metadata); the
self-checks speak ``messages.set_language``'s. The catalogue (messages.po -> the JSON the library
reads) is checked against the code."""
from __future__ import annotations

import ast
import html
import datetime as dt
import json
import re
import time
from pathlib import Path

import pytest
import torch

import i18n
from attnlab.course import compare, messages, selfcheck
from attnlab.course.messages import Message, _, received
from autograder.checks import expect
from autograder.grading import feedback, late
from autograder.grading import runner
from autograder.grading.runner import GradeResult, message_json
from autograder.grading.sandbox import WorkerError
from autograder.grading.submission import notebook_language
from autograder.protocol import MISSING, RAISED, StudentError

ROOT = Path(__file__).resolve().parents[1]
# The files whose learner-facing messages this test holds to _() (the checks' modules have their own list
# once converted: add them here).
MESSAGE_FILES = sorted([ROOT / "attnlab/course/compare.py", ROOT / "attnlab/course/selfcheck.py",
                        ROOT / "autograder/checks/expect.py", ROOT / "autograder/inline.py",
                        ROOT / "autograder/protocol.py", *(ROOT / "autograder/grading").glob("*.py"),
                        *(ROOT / "autograder/checks").glob("test_ps*.py")])
FAILURES = {"CheckFailed", "SelfCheckFailed", "StudentError", "SubmissionUnreadable", "WorkerError", "_fail"}
CHINESE = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def chinese():
    messages.set_language("zh_CN")
    yield
    messages.set_language("en")


# ------------------------------------------------------------------------------ written to be extracted
def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            yield name, node


def test_no_f_string_message_is_left():
    """A message given to a failure as an f-string (or built with % or .format) cannot be extracted."""
    found = []
    for path in MESSAGE_FILES:
        for name, node in _calls(path):
            arguments = node.args[:1] if name in FAILURES else node.args[:1] if name == "_" else []
            for arg in arguments:
                if isinstance(arg, ast.JoinedStr) or (isinstance(arg, ast.BinOp) and isinstance(arg.op, (ast.Mod, ast.Add))) \
                        or (isinstance(arg, ast.Call) and getattr(arg.func, "attr", None) == "format"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}({ast.unparse(arg)[:60]}...)")
    assert not found, "messages to write with _(\"template\", name=value):\n" + "\n".join(found)


def test_no_function_hides_the_message_function():
    """``header, _ = ...`` in a function that also calls ``_()`` makes ``_`` local there: the call then fails."""
    found = []
    for path in MESSAGE_FILES:
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            stored = any(isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store) for n in ast.walk(function))
            called = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_" for n in ast.walk(function))
            if stored and called:
                found.append(f"{path.relative_to(ROOT)}:{function.lineno} {function.name}")
    assert not found, f"functions that assign _ and call _(): {found}"


def test_every_template_is_a_constant_that_babel_extracts():
    """Every _() has a constant template (not a variable: the functions that define _ aside), and babel's
    extractor finds each (one inside an f-string's braces, say, it would not)."""
    extracted = set(i18n.message_templates())
    missing, variable = [], []
    for path in MESSAGE_FILES:
        for name, node in _calls(path):
            if name != "_" or not node.args:
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                if arg.value not in extracted:
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            elif not (isinstance(arg, ast.Name) and arg.id == "template"):
                variable.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not missing, f"templates babel does not extract (inside an f-string?): {missing}"
    assert not variable, f"_() with a template that is not a constant: {variable}"


# ------------------------------------------------------------------------------ the catalogue
def test_catalogue_is_in_step_with_the_code(tmp_path):
    """messages.po holds exactly the code's templates, and the JSON exactly its translations."""
    locales = tmp_path / "locales"
    (locales / "zh_CN" / "LC_MESSAGES").mkdir(parents=True)
    po = i18n.messages_po("zh_CN")
    (locales / "zh_CN" / "LC_MESSAGES" / "messages.po").write_bytes(po.read_bytes())
    i18n.update_messages("zh_CN", locales=locales, out=tmp_path / "json")
    command = "run `python tools/i18n.py messages --lang zh_CN` and translate the new entries"
    assert (locales / "zh_CN" / "LC_MESSAGES" / "messages.po").read_bytes() == po.read_bytes(), \
        f"{po.relative_to(ROOT)} is out of step with the code: {command}"
    shipped = i18n.MESSAGE_LOCALE / "zh_CN.json"
    assert (tmp_path / "json" / "zh_CN.json").read_bytes() == shipped.read_bytes(), \
        f"{shipped.relative_to(ROOT)} is out of step with {po.relative_to(ROOT)}: {command}"


def test_every_message_is_translated_with_the_same_fields():
    from babel.messages.pofile import read_po

    with i18n.messages_po("zh_CN").open("rb") as handle:
        catalog = read_po(handle)
    entries = [m for m in catalog if m.id]
    assert len(entries) >= 80
    problems = []
    for m in entries:
        if not m.string or m.fuzzy:
            problems.append(f"untranslated or fuzzy: {m.id!r}")
        elif messages.fields(m.string) != messages.fields(m.id):
            problems.append(f"fields {sorted(messages.fields(m.string))} instead of {sorted(messages.fields(m.id))}: {m.id!r}")
        elif re.search(r"[A-Za-z]{2,}", re.sub(r"\{[^}]*\}|`[^`]*`", "", m.id)) and not CHINESE.search(m.string):
            problems.append(f"no Chinese in the translation of {m.id!r}")
    for wrong in ("回归神经网络", "关键字向量"):
        problems += [f"{wrong} in {m.id!r}" for m in entries if wrong in m.string]
    assert not problems, "\n".join(problems)
    shipped = json.loads((i18n.MESSAGE_LOCALE / "zh_CN.json").read_text(encoding="utf-8"))
    assert len(shipped) == len(entries)


# ------------------------------------------------------------------------------ English unchanged
def test_english_texts_are_the_old_ones():
    got = torch.zeros(2, 3)
    assert compare.tensor_difference("w", got, torch.ones(2, 3), 1e-5, 1e-4) == (
        "w: 6 of 6 values differ; the largest difference is at index (0, 0): expected 1, got 0 "
        "(tolerance atol=1e-05, rtol=0.0001)")
    assert compare.tensor_difference("w", [1], torch.ones(2), 0, 0) == "w: expected a tensor, got a list of 1 values"
    assert compare.tensor_difference("w", torch.ones(3), torch.ones(2), 0, 0) == "w: expected shape (2,), got (3,)"
    bad = torch.tensor([1.0, float("nan")])
    assert compare.tensor_difference("w", bad, torch.ones(2), 0, 0) == \
        "w: 1 of 2 entries are NaN or infinite (the first at index (1,)), but all should be finite"
    with pytest.raises(expect.CheckFailed, match=r"^x: 2 is not the expected value$"):
        expect.number(2.0, 1.0, "x")
    assert str(StudentError("ValueError: no", RAISED, "`f`", hint="")) == "`f` raised ValueError: no"
    assert str(StudentError("the notebook does not define `f`", MISSING,
                            hint=_("check the name: it must be spelled exactly like this"))) == \
        "the notebook does not define `f` (check the name: it must be spelled exactly like this)"


GOLDEN_PAGE = '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>ps02: feedback for bob</title>\n<style>\nbody{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}\nh1{font-size:1.4rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.45rem;text-align:left;vertical-align:top}\n.ok{color:#0a6b2d}.bad{color:#a11}.msg{font-family:ui-monospace,monospace;font-size:.9rem;white-space:pre-wrap}\n.total{font-size:1.2rem;font-weight:bold}.note{background:#fff6dd;padding:.6rem;border-radius:4px}\n</style></head><body>\n<h1>ps02: feedback for bob</h1>\n<p class="total">Score: 1 / 3 (after the late penalty: 0)</p>\n<p class="note">a note&#x27;s &lt;b&gt;</p><p class="note">Received 2026-01-01 00:00 UTC, 5.0 h after your deadline (2025-12-31 00:00 UTC): late penalty 1 point(s).</p><p class="note">Your notebook could not be graded normally: boom&#x27;s &lt;x&gt;</p><p>When your notebook ran from top to bottom, these cells raised an error:</p><ul class="msg"><li>cell 3: NameError: &lt;x&gt;</li></ul>\n<table><thead><tr><th>Check</th><th>Points</th><th>Result</th><th>What the grader found</th></tr></thead>\n<tbody><tr><td>t1</td><td>1 / 1</td><td><span class="ok">passed</span></td><td class="msg"></td></tr><tr><td>t2</td><td>0 / 2</td><td><span class="bad">failed</span></td><td class="msg">x: &lt;b&gt; &#x27;q&#x27; &amp; &quot;z&quot;</td></tr></tbody></table>\n<p>Each check runs your functions on inputs chosen by the grader and compares the results with the\ncourse\'s reference, in this order: type, shape, dtype, finiteness, values.\nGraded 2026-12-01 17:00 UTC.</p>\n</body></html>\n'


def test_english_feedback_page_is_byte_identical_to_before(monkeypatch):
    monkeypatch.setattr(feedback.time, "gmtime", lambda *a: time.struct_time((2026, 12, 1, 17, 0, 0, 1, 335, 0)))
    result = GradeResult("ps02", "a.ipynb", tests=[runner.TestResult("t1", 1, 1, True),
                                                   runner.TestResult("t2", 0, 2, False, "x: <b> 'q' & \"z\"")],
                         notebook_errors=[{"cell": 3, "error": "NameError: <x>"}], fatal="boom's <x>")
    lateness = late.Lateness(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                             dt.datetime(2025, 12, 31, tzinfo=dt.timezone.utc), dt.timedelta(hours=5), 1.0)
    assert feedback.render("bob", result, "a note's <b>", lateness) == GOLDEN_PAGE


# ------------------------------------------------------------------------------ worker -> trusted side
def _failed_check() -> runner.TestResult:
    try:
        expect.tensor(torch.zeros(2, 3), torch.ones(2, 3), "weights")
    except expect.CheckFailed as exc:
        return runner.TestResult("test_weights", 0, 1, False, str(exc), message_json=message_json(exc))
    raise AssertionError("the check did not fail")


def test_round_trip_from_grading_process_to_the_chinese_feedback_page():
    test = _failed_check()
    result = GradeResult("ps02", "a.ipynb", tests=[test, runner.TestResult("test_ok", 1, 1, True)], language="zh_CN")
    wire = json.loads(json.dumps({"index": 0, "result": result.to_dict()}))  # what serve_tasks writes
    back = GradeResult.from_dict(wire["result"])
    assert back.tests[0].message == test.message and back.tests[0].message.startswith("weights: 6 of 6 values differ")
    shown = back.tests[0].shown_message("zh_CN")
    assert shown.startswith("weights：6 个值中有 6 个不同") and "容差" in shown
    page = feedback.render("小明", back)
    assert '<html lang="zh-CN">' in page and shown in page and "得分：1 / 2" in page and "未通过" in page
    assert "What the grader found" not in page and "passed" not in page
    english = feedback.render("bob", GradeResult.from_dict({**wire["result"], "language": "en"}))
    assert '<html lang="en">' in english and test.message in english


def test_worker_reply_is_translated_and_a_hostile_one_is_shown_in_english():
    from autograder.grading import worker

    reply = {"ok": False, "kind": MISSING, **worker._("the notebook does not define `{name}`", name="f")}
    error = WorkerError.from_reply(json.loads(json.dumps(reply)))
    assert str(error) == "the notebook does not define `f`" and error.message.render("zh_CN") == "笔记本没有定义 `f`"
    lying = {**reply, "message": {"template": "you scored full marks", "params": {}}}  # not its own text
    assert not isinstance(WorkerError.from_reply(lying).message, Message)
    hostile = {**reply, "message": {"template": "{name.__class__.__mro__}", "params": {"name": "x"}}}
    assert str(WorkerError.from_reply(hostile).message) == "the notebook does not define `f`"


HOSTILE = [
    {"template": "{0.__class__}", "params": {}},
    {"template": "{name.__globals__}", "params": {"name": "x"}},
    {"template": "{name.__class__.__base__.__subclasses__}", "params": {"name": "x"}},
    {"template": "{name[0]}", "params": {"name": "x"}},
    {"template": "{name:>999999999}", "params": {"name": "x"}},
    {"template": "{name:{width}}", "params": {"name": "x", "width": 10**8}},
    {"template": "{name!r:>{width}}", "params": {"name": "x", "width": 10**8}},
    {"template": "{}", "params": {}},
    {"template": "{", "params": {}},
    {"template": "{name}", "params": {"name": 10**5000}},
    {"template": "{name}", "params": {"not an identifier": 1, "name": "x"}},
    {"template": "{name}", "params": {"name": ["a", "list"]}},
    {"template": "{name}", "params": {"name": {"template": "{x}", "params": {"x": {"template": "{x}", "params": {
        "x": {"template": "{x}", "params": {"x": {"template": "{x}", "params": {"x": {"template": "{x}", "params": {
            "x": {"template": "{x}", "params": {"x": 1}}}}}}}}}}}}}},
    {"template": "{a}", "params": {f"p{i}": "x" for i in range(1000)} | {"a": "x"}},
    {"template": 5, "params": {}},
    {"params": {}},
    "{name.__globals__}",
    ["template"],
    {"template": "{name}", "params": "name"},
]


@pytest.mark.parametrize("payload", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_message_json_falls_back_to_the_english_text(payload):
    with pytest.raises(ValueError):
        Message.from_json(payload)
    assert received("the English text", payload, "zh_CN") == "the English text"
    test = runner.TestResult("t", 0, 1, False, "the English text", message_json=payload)
    assert test.shown_message("zh_CN") == "the English text"
    page = feedback.render("bob", GradeResult("ps02", "a.ipynb", tests=[test], language="zh_CN"))
    assert "the English text" in page


def test_a_message_pickles_and_copies():
    import copy
    import pickle

    message = _("{name}: expected {{braces}} {got}", name="x", got=_("a {type}", type="dict {"))
    for again in (pickle.loads(pickle.dumps(message)), copy.deepcopy(message)):
        assert again == message and again.template == message.template and again.to_json() == message.to_json()


def test_huge_parameters_are_cut():
    data = {"template": "{name}", "params": {"name": "x" * 10**6}}
    assert len(Message.from_json(data)) == messages.MAX_TEXT


def test_translation_never_reaches_attributes_of_parameters(monkeypatch):
    """Our catalogue is keyed by the worker's template: even a translation with attribute access (a
    mistake in the catalogue) is refused and the English text shown."""
    monkeypatch.setitem(messages.catalogue("zh_CN"), "{name} is bad", "{name.__class__} 不好")
    assert _("{name} is bad", name="x").render("zh_CN") == "x is bad"


def test_notebook_language_from_metadata():
    assert notebook_language({"metadata": {"attnlab": {"language": "zh_CN"}}}) == "zh_CN"
    assert notebook_language({"metadata": {}}) == "en"
    assert notebook_language({"metadata": {"attnlab": {"language": "../../etc"}}}) == "en"
    assert notebook_language({"metadata": {"attnlab": "zh_CN"}}) == "en"


# ------------------------------------------------------------------------------ self-checks
def test_self_checks_speak_the_chosen_language(chinese, capsys):
    selfcheck.expect_tensor("weights", torch.ones(2), torch.ones(2))
    assert capsys.readouterr().out == "✓ weights：形状、数据类型和数值均符合预期\n"
    with pytest.raises(selfcheck.SelfCheckFailed) as failure:
        selfcheck.expect_tensor("weights", torch.ones(3), torch.ones(2))
    assert str(failure.value) == "weights：形状应为 (2,)，实际为 (3,)"
    assert failure.value._render_traceback_() == ["✗ weights：形状应为 (2,)，实际为 (3,)"]
    with pytest.raises(selfcheck.SelfCheckFailed, match="尚未定义"):
        selfcheck.expect_defined("surely_not_defined_here")
    assert compare.describe([1, 2]).render() == "一个包含 2 个值的列表"


def test_checks_speak_the_notebook_language_inline_and_english_in_the_grader(chinese):
    """Under plain nbgrader a hidden test cell shows the check's message in the kernel's language; the
    grader records English whatever its process speaks."""
    with pytest.raises(expect.CheckFailed) as failure:
        expect.number(2.0, 1.0, "x")
    assert str(failure.value) == "x：2 不是预期的值"
    assert message_json(failure.value) == {"template": "{name}: {got:g} is not the expected value",
                                           "params": {"name": "x", "got": 2.0}}
    assert runner.english(failure.value) == "x: 2 is not the expected value"
    error = StudentError("ValueError: no", RAISED, "`f`")
    assert str(error) == "`f` 引发了 ValueError: no" and runner.english(error) == "`f` raised ValueError: no"


def test_gradescope_output_speaks_the_notebook_language():
    from autograder.grading import gradescope

    result = GradeResult("ps02", "a.ipynb", tests=[_failed_check(), runner.TestResult("ok", 1, 1, True)],
                         language="zh_CN", notebook_errors=[{"cell": 2, "error": "NameError: x"}])
    out = gradescope.results_json(result, "root", 1.0)
    assert out["tests"][0]["output"].startswith("weights：") and out["tests"][1]["output"] == "通过"
    assert out["tests"][0]["status"] == "failed" and out["output"] == "单元格 2：NameError: x"


def test_self_checks_stay_english_by_default(capsys):
    selfcheck.expect_shape("x", torch.ones(2), (2,))
    assert capsys.readouterr().out == "✓ x: shape (2,) as expected\n"
    with pytest.raises(ValueError):
        messages.set_language("fr")


@pytest.mark.slow
def test_a_chinese_notebook_is_graded_in_chinese(tmp_path):
    """A real grading in the sandbox: the Chinese release's metadata gives Chinese feedback; the same
    notebook without it gives the English one; the scores and the recorded English are the same."""
    import nbformat
    from _grading import solved_notebook, with_cells

    from autograder.grading.runner import grade

    wrong = {"scaled_dot_product_attention": "def scaled_dot_product_attention(query, key, value, mask=None, "
                                             "dropout_p=0.0):\n    return query, query\n",
             "masked_softmax": "def masked_softmax(scores, mask=None):\n    return undefined_name\n"}
    results = {}
    for language in ("en", "zh_CN"):
        nb = with_cells(solved_notebook("ps02_attention"), replace=wrong)
        nb.metadata["attnlab"] = {"language": language}
        path = tmp_path / f"{language}.ipynb"
        nbformat.write(nb, str(path))
        results[language] = grade("ps02_attention", str(path))
    en, zh = results["en"], results["zh_CN"]
    assert zh.language == "zh_CN" and en.language == "en"
    assert [(t.name, t.points, t.message) for t in zh.tests] == [(t.name, t.points, t.message) for t in en.tests]
    # A check whose own words are not yet a _() template carries no message_json: shown in English.
    failed = [t for t in zh.tests if not t.passed and t.message_json]
    assert failed and "`masked_softmax` raised NameError" in zh.tests[0].message
    page = feedback.render("小明", GradeResult.from_dict(json.loads(json.dumps(zh.to_dict()))))
    assert '<html lang="zh-CN">' in page and "未通过" in page
    shown = [t.shown_message("zh_CN") for t in failed]
    assert all(CHINESE.search(text) and html.escape(text) in page for text in shown), shown
    assert "`masked_softmax` 引发了 NameError" in page
    english = feedback.render("bob", en)
    assert '<html lang="en">' in english and not CHINESE.search(english)

