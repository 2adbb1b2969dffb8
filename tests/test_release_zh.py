"""The Chinese release exercises_zh/: the English source notebooks with their prose translated through
locales/zh_CN/LC_MESSAGES/exercises/<a>.po; the same code, checks and points, graded like the English."""
from __future__ import annotations

import os

import nbformat
import pytest

from _grading import release_notebook, solved_notebook, write
from attnlab.course import exercise_i18n, release

ZH, ZH_RELEASE = "zh_CN", release.TRANSLATIONS["zh_CN"]
UPDATE = "python tools/i18n.py exercises --lang zh_CN"


def source_notebook(assignment: str):
    return nbformat.read(os.path.join(release.ROOT, "solutions", assignment, assignment + ".ipynb"), as_version=4)


def write_catalogue(root, assignment: str, entries: dict[str, str], fuzzy: set[str] = frozenset()) -> str:
    """A catalogue in ``root``'s locales/ holding ``entries`` ({English: translation})."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    catalog = Catalog(locale=ZH)
    for msgid, msgstr in entries.items():
        catalog.add(msgid, msgstr, flags=("fuzzy",) if msgid in fuzzy else ())
    path = exercise_i18n.catalogue_path(str(root), ZH, assignment)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        write_po(handle, catalog, width=0)
    return path


# --------------------------------------------------------------------------- messages
def test_markdown_is_cut_into_headings_paragraphs_list_items_and_table_cells():
    source = ("# Problem set 9: a title\n\nA paragraph on\ntwo lines with $x$ and `code`.\n\n"
              "$$a = b$$\n\n- an item\n  on two lines\n- **second** item\n\n"
              "| key | the change |\n|---|---|\n| `\"k\"` | swap the heads |\n\n"
              "```python\nprint('code is not prose')\n```\n\n<details><summary>Hint</summary>\n\n</details>")
    assert [s.msgid for s in exercise_i18n.segments(source)] == [
        "Problem set 9: a title", "A paragraph on two lines with $x$ and `code`.", "an item on two lines",
        "**second** item", "key", "the change", "swap the heads", "<details><summary>Hint</summary>"]
    assert exercise_i18n.translate_markdown(source, {}) == source
    translated = exercise_i18n.translate_markdown(source, {
        "Problem set 9: a title": "习题 9：\n标题", "A paragraph on two lines with $x$ and `code`.": "一段含 $x$ 和 `code` 的话。",
        "an item on two lines": "第一项\n分两行", "swap the heads": "交换头 | 两个"})
    assert translated.startswith("# 习题 9： 标题\n\n一段含 $x$ 和 `code` 的话。\n\n$$a = b$$\n\n- 第一项\n  分两行\n- **second** item\n")
    assert "| `\"k\"` | 交换头 \\| 两个 |\n" in translated
    assert "```python\nprint('code is not prose')\n```" in translated
    assert not exercise_i18n.has_words("$x = 1$ `f(x)` </details>") and exercise_i18n.has_words("注意力")


def test_every_source_notebook_is_unchanged_by_an_empty_catalogue_and_fully_translatable():
    for assignment in release.assignments():
        for cell in source_notebook(assignment).cells:
            if cell.cell_type != "markdown":
                continue
            assert exercise_i18n.translate_markdown(cell.source, {}) == cell.source
            segments = exercise_i18n.segments(cell.source)
            everything = {s.msgid: "译文" for s in segments}
            out = exercise_i18n.translate_markdown(cell.source, everything)
            assert [s.msgid for s in exercise_i18n.segments(out)] == ["译文"] * len(segments), (assignment, cell.source[:200])


# --------------------------------------------------------------------------- catalogues
def test_every_assignment_has_a_catalogue_in_step_with_its_source_notebook():
    for assignment in release.assignments():
        path = exercise_i18n.catalogue_path(release.ROOT, ZH, assignment)
        rel = os.path.relpath(path, release.ROOT)
        assert os.path.isfile(path), f"no catalogue {rel}: run `{UPDATE}`"
        expected = {s.msgid for _, s in exercise_i18n.cell_messages(source_notebook(assignment))}
        held = {m.id for m in exercise_i18n.read_catalogue(path) if m.id}
        stale, missing = sorted(held - expected)[:3], sorted(expected - held)[:3]
        assert not stale and not missing, (f"{rel} is out of step with solutions/{assignment}/{assignment}.md "
                                           f"(missing {missing}, stale {stale}): run `{UPDATE}`, then `make exercises`")


def test_a_translation_keeps_the_code_spans_formulas_and_tags_of_its_english():
    english = "Write `mha_flops(d, h)` for $L_q$ queries <b>now</b>, see [the chapter](../book/ch04.md)."
    good = "为 $L_q$ 个查询写出 `mha_flops(d, h)` <b>现在</b>，见[该章](../book/ch04.md)。"
    assert exercise_i18n.markup_problems(english, good) == []
    bad = "为 $L_{q}$ 个查询写出 mha_flops(d, h) <b>现在</b>，见[该章](ch04.md)。"
    assert exercise_i18n.markup_problems(english, bad) == [
        "code spans differ (missing ['`mha_flops(d, h)`'], added [])",
        "formulas differ (missing ['$L_q$'], added ['$L_{q}$'])",
        "link targets differ (missing ['](../book/ch04.md)'], added ['](ch04.md)'])"]


def test_exercise_translations_are_chinese_keep_their_markup_and_none_is_fuzzy():
    import re

    cjk = re.compile(r"[\u4e00-\u9fff]")
    problems = []
    for assignment in release.assignments():
        for message in exercise_i18n.read_catalogue(exercise_i18n.catalogue_path(release.ROOT, ZH, assignment)):
            if not message.id or not message.string:
                continue
            if message.fuzzy:
                problems.append(f"{assignment}: {message.id[:50]!r} is fuzzy")
            if not cjk.search(message.string):
                problems.append(f"{assignment}: {message.id[:50]!r}: the translation has no Chinese characters")
            problems += [f"{assignment}: {message.id[:50]!r}: {p}" for p in exercise_i18n.markup_problems(message.id, message.string)]
    assert not problems, "\n".join(problems[:20])


def test_update_keeps_translations_of_unchanged_messages_drops_stale_ones_and_marks_nothing_fuzzy(tmp_path):
    nb = source_notebook("ps02_attention")
    messages = [s.msgid for _, s in exercise_i18n.cell_messages(nb)]
    kept, changed = messages[0], messages[1]
    write_catalogue(tmp_path, "ps02_attention", {kept: "习题 2", changed: "旧的译文", "a sentence removed from the source": "删去"})
    path, count, translated = exercise_i18n.update_catalogue(nb, "ps02_attention", ZH, str(tmp_path))
    entries = {m.id: m for m in exercise_i18n.read_catalogue(path) if m.id}
    assert set(entries) == set(messages) and count == len(set(messages)) and translated == 2
    assert entries[kept].string == "习题 2" and "a sentence removed from the source" not in entries
    assert not any(m.fuzzy for m in entries.values())
    before = open(path, "rb").read()
    exercise_i18n.update_catalogue(nb, "ps02_attention", ZH, str(tmp_path))
    assert open(path, "rb").read() == before, "an update with nothing new must not change the file"


# --------------------------------------------------------------------------- the translated notebook
def test_a_translated_message_reaches_the_chinese_notebook_and_the_rest_stays_english(tmp_path):
    english = source_notebook("ps04_multihead")
    text = release.notebook_text(english)
    messages = [s.msgid for _, s in exercise_i18n.cell_messages(english)]
    title, item, cell = messages[0], messages[4], "the change"
    untranslated = messages[1]
    assert title == "Problem set 4: multi-head attention" and cell in messages
    write_catalogue(tmp_path, "ps04_multihead", {title: "习题 4：多头注意力", item: "在 `# YOUR CODE HERE` 处写代码。",
                                                 cell: "所作的改动", untranslated: "模糊的译文"}, fuzzy={untranslated})
    zh = nbformat.reads(release.translated_source(text, "ps04_multihead", ZH, catalogues=str(tmp_path)), as_version=4)
    prose = "\n".join(c.source for c in zh.cells if c.cell_type == "markdown")
    assert "# 习题 4：多头注意力\n" in prose and "\n- 在 `# YOUR CODE HERE` 处写代码。\n" in prose
    assert "| key | 所作的改动 |" in prose
    assert "模糊的译文" not in prose, "a fuzzy entry is not used"
    assert "One attention head compares every query with every key once." in prose, "no translation: English"
    assert release.notebook_language(zh) == ZH and release.notebook_language(english) == "en"
    assert len(zh.cells) == len(english.cells)
    for mine, theirs in zip(zh.cells, english.cells):
        assert mine.cell_type == theirs.cell_type and mine.metadata == theirs.metadata
        if release.is_setup_cell(theirs):
            assert mine.source == theirs.source + release.SET_LANGUAGE.format(language=ZH)
        elif mine.cell_type == "code":
            assert mine.source == theirs.source


def test_notebook_language_is_validated():
    assert release.notebook_language({"metadata": {}}) == "en"
    assert release.notebook_language({"metadata": {"attnlab": {"language": "zh_CN"}}}) == "zh_CN"
    assert release.notebook_language({"metadata": {"attnlab": {"language": "xx"}}}) == "en"
    assert release.notebook_language({"metadata": {"attnlab": "zh_CN"}}) == "en"
    with pytest.raises(ValueError, match="'xx' is not one of the course's languages"):
        release.notebook_language({"metadata": {"attnlab": {"language": "xx"}}}, strict=True)


def test_every_assignment_has_a_chinese_release_with_the_english_code_checks_and_points():
    for assignment in release.assignments():
        path = os.path.join(release.ROOT, ZH_RELEASE, assignment, assignment + ".ipynb")
        assert os.path.isfile(path), f"{ZH_RELEASE}/{assignment} is missing: run `make exercises`"
        zh, en = release_notebook(assignment, ZH_RELEASE), release_notebook(assignment)
        assert release.notebook_language(zh) == ZH and release.notebook_language(en) == "en"
        assert "attnlab" not in en.metadata, "the English release keeps its bytes: no language metadata"
        assert [c.cell_type for c in zh.cells] == [c.cell_type for c in en.cells]
        for index, (mine, theirs) in enumerate(zip(zh.cells, en.cells)):
            where = f"{assignment} cell {index}"
            assert mine.metadata == theirs.metadata, f"{where}: nbgrader metadata (grade_id, points, locks) differ"
            if release.is_setup_cell(theirs):
                assert mine.source == theirs.source + release.SET_LANGUAGE.format(language=ZH), where
                assert "nbgrader" not in mine.metadata, f"{where}: the setup cell is not graded"
            elif mine.cell_type == "code":
                assert mine.source == theirs.source, f"{where}: the code differs from the English release"
        assert sum(release.is_setup_cell(c) for c in zh.cells) == 1


@pytest.mark.slow
def test_the_chinese_release_is_graded_like_the_english_one(tmp_path):
    """The solved Chinese notebook scores full marks, the Chinese release 0, through the grader."""
    from autograder.grading.runner import grade

    assignment = "ps02_attention"
    solved = grade(assignment, write(solved_notebook(assignment, ZH_RELEASE), tmp_path / "solved" / f"{assignment}.ipynb"))
    assert solved.score == solved.max_score > 0, [(t.name, t.message) for t in solved.tests if not t.passed]
    assert not solved.notebook_errors and solved.fatal is None
    blank = grade(assignment, write(release_notebook(assignment, ZH_RELEASE), tmp_path / "blank" / f"{assignment}.ipynb"))
    assert blank.score == 0 and blank.max_score == solved.max_score


def test_the_chinese_setup_cell_runs_and_makes_the_self_checks_speak_chinese():
    """Where the course is installed, the setup cell installs nothing and sets the language."""
    import subprocess
    import sys

    setup = release_notebook("ps02_attention", ZH_RELEASE).cells[0].source
    probe = setup + "\nimport attnlab.course.messages as m\nprint('language:', m.LANGUAGE)\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=release.ROOT,
                         env={**os.environ, "PYTHONPATH": release.ROOT})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "language: zh_CN"


@pytest.mark.slow
def test_a_new_translation_makes_the_committed_chinese_release_stale(tmp_path):
    """`--check` builds with the catalogues as they are: a translation not yet released is a stale exercises_zh/."""
    assignment = "ps02_attention"
    title = exercise_i18n.cell_messages(source_notebook(assignment))[0][1].msgid
    entries = {m.id: m.string for m in exercise_i18n.read_catalogue(
        exercise_i18n.catalogue_path(release.ROOT, ZH, assignment)) if m.id and m.string}
    entries[title] = "习题 2：新的译文"
    write_catalogue(tmp_path / "catalogues", assignment, entries)
    course = tmp_path / "course"
    names = release.build(str(course), [assignment], catalogues=str(tmp_path / "catalogues"))
    assert release.differences(str(course), names, only=True) == [f"{ZH_RELEASE}/{assignment}/{assignment}.ipynb (stale)"]
    built = nbformat.read(course / ZH_RELEASE / assignment / f"{assignment}.ipynb", as_version=4)
    assert any(c.cell_type == "markdown" and c.source.startswith("# 习题 2：新的译文\n") for c in built.cells)
