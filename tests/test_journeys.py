"""The learner's and the instructor's journeys, end to end, the way a person takes them.

Learner: open a released exercise notebook (`exercises/psNN_topic/psNN_topic.ipynb`) in a Jupyter
kernel (nbclient) and Run All. The kernel runs in a fresh venv that has only the course's wheel
installed (``course_wheel``, tests/_venvs.py) and no checkout on its path, in a scratch folder: as
on Colab or a learner's own Jupyter, the setup cell finds the course and the self-checks work
outside the repository. Run All: every self-check cell fails, each with a short message that names
what to write (no wall of traceback). Then, in the same kernel, write the answers (the cells of the
source notebook in `solutions/`, whose bodies the release builds from `attnlab`) and
Run All again: every cell runs and every self-check prints its tick.

Instructor: the grading commands of the instructors' guide on a folder of three submissions (one
perfect, one partial, one broken): the CSV of scores and a feedback file per student.

In Chinese (issue 20): the learner's journey on Chinese notebooks of `exercises_zh/` (the self-checks
speak Chinese, and still name what to write), and the instructor's on a class that handed in the Chinese
notebook: the same scores, and feedback pages in Chinese (`lang="zh-CN"`).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from attnlab.course.release import is_setup_cell

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
EXERCISES_ZH = ROOT / "exercises_zh"
# The Chinese learner's journey on two assignments (the English one runs on every assignment, and the
# notebooks differ only in their prose and one line of the setup cell, which tests/test_release_zh.py checks)
ZH_JOURNEYS = ("ps02_attention", "ps10_decoder_only")
CJK = re.compile(r"[\u4e00-\u9fff]")
SOLUTIONS = ROOT / "solutions"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Hang guard per cell (an exercise cell runs in seconds), not a performance limit.
CELL_GUARD_S = 600
# What a traceback wall looks like: IPython's frame markers and the "most recent call" banner.
FRAME = re.compile(r"^(-{20,}|Cell In\[|\s*-+>\s*\d+|Traceback \(most recent call last\)|File \")", re.M)
MAX_MESSAGE_LINES = 4


def released(folder: Path = EXERCISES) -> list[str]:
    return sorted(p.name for p in folder.glob("ps*") if (p / f"{p.name}.ipynb").is_file())


def journeys() -> list:
    english = [pytest.param(("exercises", a), id=a) for a in released()]
    chinese = [pytest.param(("exercises_zh", a), id=f"zh-{a}") for a in ZH_JOURNEYS if a in released(EXERCISES_ZH)]
    return english + chinese


def nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_self_check(cell) -> bool:
    return cell.cell_type == "code" and bool(nbgrader(cell).get("grade")) and not nbgrader(cell).get("solution")


def is_answer(cell) -> bool:
    return cell.cell_type == "code" and bool(nbgrader(cell).get("solution"))


def errors(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


def shown(output) -> str:
    """What the learner sees for an error output, without colour codes."""
    return ANSI.sub("", "\n".join(output.get("traceback", [])) or f"{output.ename}: {output.evalue}").strip()


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def names_to_write(notebook) -> set[str]:
    """The functions, classes and variables the learner writes in the answer cells."""
    names = set()
    for cell in notebook.cells:
        if is_answer(cell):
            names |= set(re.findall(r"^(?:def|class)\s+(\w+)", cell.source, re.M))
            names |= set(re.findall(r"^(\w+)\s*(?::[^=]+)?=", cell.source, re.M))
    return names


def fill_in(exercise, solution):
    """The exercise with each answer cell replaced by the source notebook's cell of the same grade_id."""
    answers = {nbgrader(c)["grade_id"]: c.source for c in solution.cells if is_answer(c)}
    filled = copy.deepcopy(exercise)
    missing = []
    for cell in filled.cells:
        if is_answer(cell):
            grade_id = nbgrader(cell)["grade_id"]
            if grade_id not in answers:
                missing.append(grade_id)
            else:
                cell.source = answers[grade_id]
    assert not missing, f"answer cells of the release without a source cell in solutions/: {missing}"
    return filled


@pytest.fixture(scope="module", params=journeys() or [("exercises", "(none released)")])
def edition(request) -> tuple[str, str]:
    """(release folder, assignment): every English assignment, and ZH_JOURNEYS in Chinese."""
    if request.param[1] == "(none released)":
        pytest.fail("no exercise notebook in exercises/: run `make exercises`")
    return request.param


@pytest.fixture(scope="module")
def assignment(edition) -> str:
    return edition[1]


def _load(assignment: str, release: str = "exercises"):
    exercise = nbformat.read(ROOT / release / assignment / f"{assignment}.ipynb", as_version=4)
    solution = nbformat.read(SOLUTIONS / assignment / f"{assignment}.ipynb", as_version=4)
    return exercise, solution


WHERE_IS_THE_COURSE = "import attnlab, autograder\nprint(attnlab.__file__, autograder.__file__)"


def kernel_of(python: Path, folder: Path):
    """A kernel manager whose kernel is ``python`` (the wheel's venv), not this test run's interpreter."""
    import json

    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec = folder / "kernels" / "course-wheel"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "the course's wheel", "language": "python"}))
    return KernelManager(kernel_name="course-wheel",
                         kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder / "kernels")]))


def learner_session(exercise, solution, folder: Path, python: Path):
    """What a learner does, in ONE kernel of ``python``: Run All on the notebook as released, then write
    the answers and Run All again. Returns both executed notebooks (as released, as filled in) and
    where the kernel found the course."""
    released_run = copy.deepcopy(exercise)
    filled_run = fill_in(exercise, solution)
    work = folder / "work"
    work.mkdir()
    km = kernel_of(python, folder)
    client = NotebookClient(released_run, timeout=CELL_GUARD_S, km=km, allow_errors=True,
                            resources={"metadata": {"path": str(work)}})
    try:
        with client.setup_kernel():
            for index, cell in enumerate(released_run.cells):
                client.execute_cell(cell, index)
            client.nb = filled_run
            for index, cell in enumerate(filled_run.cells):
                client.execute_cell(cell, index)
            probe = nbformat.v4.new_code_cell(WHERE_IS_THE_COURSE)
            client.nb = nbformat.v4.new_notebook(cells=[probe])
            client.execute_cell(probe, 0)
    finally:  # a kernel manager handed to nbclient is the caller's to shut down
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return released_run, filled_run, text_of(probe)


@pytest.fixture(scope="module")
def journey(edition, tmp_path_factory, course_wheel):
    release, assignment = edition
    exercise, solution = _load(assignment, release)
    released_run, filled_run, where = learner_session(exercise, solution, tmp_path_factory.mktemp(assignment),
                                                      course_wheel[1])
    return exercise, solution, released_run, filled_run, where


@pytest.mark.slow
def test_the_setup_cell_finds_the_installed_course_outside_the_repository(assignment, journey, course_wheel):
    exercise, _, result, _, where = journey
    assert is_setup_cell(exercise.cells[0]), f"{assignment}: the release does not begin with the setup cell"
    assert not errors(result.cells[0]) and "The course library is ready." in text_of(result.cells[0]), \
        f"{assignment}: the setup cell said {text_of(result.cells[0])!r} {errors(result.cells[0])}"
    venv = str(course_wheel[1].parent.parent)
    paths = where.split()
    assert len(paths) == 2 and all(p.startswith(venv) and str(ROOT) not in p for p in paths), \
        f"{assignment}: the kernel found the course at {where!r}, not in the wheel's venv {venv}"


@pytest.mark.slow
def test_learner_runs_the_release_and_each_self_check_says_what_to_write(assignment, journey):
    exercise, solution, result, _, _ = journey
    checks = [i for i, c in enumerate(exercise.cells) if is_self_check(c)]
    assert checks, f"{assignment}: no self-check cell (nbgrader grade cell) in the release"
    assert any(is_answer(c) for c in exercise.cells), f"{assignment}: no answer cell in the release"
    names = names_to_write(solution)
    unhelpful = {}
    for index in checks:
        cell = result.cells[index]
        grade_id = nbgrader(cell).get("grade_id")
        failures = errors(cell)
        if not failures:
            unhelpful[grade_id] = f"passed with nothing written (output: {text_of(cell)[:200]!r})"
            continue
        message = shown(failures[0])
        lines = [line for line in message.splitlines() if line.strip()]
        if FRAME.search(message) or len(lines) > MAX_MESSAGE_LINES:
            unhelpful[grade_id] = f"a traceback of {len(lines)} lines instead of a short message:\n{message[:1500]}"
        elif not any(re.search(rf"\b{re.escape(n)}\b", message) for n in names):
            unhelpful[grade_id] = f"the message names none of {sorted(names)}: {message!r}"
        elif exercise.metadata.get("attnlab", {}).get("language") == "zh_CN" and not CJK.search(message):
            unhelpful[grade_id] = f"the Chinese notebook's self-check speaks English: {message!r}"
    assert not unhelpful, (f"{assignment}: self-checks that do not tell a learner with an empty notebook what to do:\n"
                           + "\n".join(f"- {k}: {v}" for k, v in unhelpful.items()))


@pytest.mark.slow
def test_learner_fills_in_the_answers_and_every_self_check_passes(assignment, journey):
    _, _, _, result, _ = journey
    failing = {}
    for cell in result.cells:
        if cell.cell_type != "code":
            continue
        if errors(cell):
            failing[nbgrader(cell).get("grade_id") or cell.source[:60]] = shown(errors(cell)[0])[-800:]
    assert not failing, f"{assignment}: cells that fail once the answers are written:\n{failing}"
    for cell in result.cells:
        if is_self_check(cell) and cell.source.lstrip().startswith("# Self-check") and "expect_" in cell.source:
            assert "\u2713" in text_of(cell), f"{nbgrader(cell)['grade_id']}: no tick printed: {text_of(cell)!r}"


def test_answers_are_filled_by_grade_id_and_stubs_detected():
    """The journey's own helpers: the fill-in matches cells by grade_id, and a wall of traceback is seen."""
    def cell(source, **meta):
        c = nbformat.v4.new_code_cell(source)
        c.metadata["nbgrader"] = meta
        return c

    exercise = nbformat.v4.new_notebook(cells=[
        cell("def f(x):\n    raise NotImplementedError()", grade_id="f", solution=True, grade=False),
        cell("assert f(1) == 2", grade_id="test_f", solution=False, grade=True, points=1)])
    solution = nbformat.v4.new_notebook(cells=[
        cell("def f(x):\n    return 2 * x", grade_id="f", solution=True, grade=False), exercise.cells[1]])
    filled = fill_in(exercise, solution)
    assert filled.cells[0].source == "def f(x):\n    return 2 * x" and exercise.cells[0].source.endswith("Error()")
    assert [is_self_check(c) for c in filled.cells] == [False, True]
    assert names_to_write(solution) == {"f"}
    wall = ("\x1b[0;31m---------------------------------------------------------------------------\x1b[0m\n"
            "NotImplementedError                       Traceback (most recent call last)\n"
            "Cell In[4], line 4\n----> 4 weights = f(1)\n")
    assert FRAME.search(ANSI.sub("", wall))
    assert not FRAME.search("\u2717 f is not written yet: replace `raise NotImplementedError()` in its cell")


# ----------------------------------------------------------------------------------------------
# Instructor: grade a folder of three submissions with the documented command.

import csv  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

INSTRUCTOR_ASSIGNMENT = "ps02_attention"
GRADE_COMMAND = "-m autograder grade --assignment"  # as the guides write it (python -m autograder grade ...)


def documented_commands() -> list[str]:
    """Lines of the book's pages and the README that run the grading CLI."""
    sources = sorted((ROOT / "book").glob("*.md")) + [ROOT / "README.md"]
    return [line.strip() for path in sources for line in path.read_text(encoding="utf-8").splitlines()
            if GRADE_COMMAND in line]


def grade_a_class(tmp_path_factory, release: str = "exercises"):
    """A course folder where the instructor has graded alice (perfect), bob (partial), carol (broken),
    who all handed in the notebook of ``release``."""
    assignment = INSTRUCTOR_ASSIGNMENT
    if not (ROOT / release / assignment / f"{assignment}.ipynb").is_file():
        pytest.fail(f"{release}/{assignment}/{assignment}.ipynb is missing: run `make exercises`")
    exercise, solution = _load(assignment, release)
    course = tmp_path_factory.mktemp("course")
    handins = course / "handins"
    # alice: every answer written (the source notebook's answers)
    perfect = fill_in(exercise, solution)
    # bob: masked_softmax and the written answer, attention left as released
    partial = copy.deepcopy(exercise)
    answers = {nbgrader(c)["grade_id"]: c.source for c in solution.cells if is_answer(c)}
    for cell in partial.cells:
        if is_answer(cell) and nbgrader(cell)["grade_id"] in ("masked_softmax", "score_std_answer"):
            cell.source = answers[nbgrader(cell)["grade_id"]]
    for student, notebook in (("alice", perfect), ("bob", partial)):
        (handins / student).mkdir(parents=True)
        nbformat.write(notebook, handins / student / f"{assignment}.ipynb")
    # carol: the upload broke off half-way (not valid JSON)
    (handins / "carol").mkdir()
    text = nbformat.writes(perfect)
    (handins / "carol" / f"{assignment}.ipynb").write_text(text[: len(text) // 2], encoding="utf-8")

    command = [sys.executable, "-m", "autograder", "grade", "--assignment", assignment, "--course", str(course),
               str(handins)]
    result = subprocess.run(command, cwd=course, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command[1:])} failed ({result.returncode}):\n{result.stderr[-4000:]}"
    return course, assignment, result




@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    return grade_a_class(tmp_path_factory)


@pytest.fixture(scope="module")
def graded_class_zh(tmp_path_factory):
    return grade_a_class(tmp_path_factory, "exercises_zh")


def _points(assignment: str) -> dict[str, float]:
    from autograder import checks

    return dict(checks.load(assignment).POINTS)


def test_the_instructor_command_is_documented():
    commands = documented_commands()
    assert commands, f"no page of book/ nor the README shows `python {GRADE_COMMAND} ...`"


@pytest.mark.slow
def test_instructor_grades_a_class_into_a_csv_of_scores(graded_class):
    course, assignment, result = graded_class
    points = _points(assignment)
    total = sum(points.values())
    table = course / f"grades_{assignment}.csv"
    assert table.is_file(), f"no CSV of scores in {course}: {sorted(p.name for p in course.iterdir())}\n{result.stderr}"
    rows = {row["student"]: row for row in csv.DictReader(table.open(encoding="utf-8"))}
    assert sorted(rows) == ["alice", "bob", "carol"], rows
    score = {student: float(row["score"]) for student, row in rows.items()}
    assert all(float(row["max_score"]) == total for row in rows.values()), rows
    assert score["alice"] == total, f"the perfect submission scored {score['alice']}/{total}: {rows['alice']}"
    expected_bob = points["test_masked_softmax"] + points["test_score_std"]
    assert score["bob"] == expected_bob, f"the partial submission scored {score['bob']}, expected {expected_bob}: {rows['bob']}"
    assert float(rows["bob"]["test_masked_softmax"]) == points["test_masked_softmax"], rows["bob"]
    assert float(rows["bob"]["test_attention_values"]) == 0, rows["bob"]
    assert score["carol"] == 0, f"the broken submission scored {score['carol']}: {rows['carol']}"
    assert rows["carol"]["problem"].strip(), f"the broken submission has no explanation in the CSV: {rows['carol']}"
    # the summary the instructor sees on the terminal
    for student in ("alice", "bob", "carol"):
        assert re.search(rf"^{student}\s+{score[student]:g}/{total:g}\s*$", result.stdout, re.M), result.stdout


@pytest.mark.slow
def test_instructor_has_feedback_for_every_student(graded_class):
    course, assignment, _ = graded_class
    rows = {row["student"]: row for row in csv.DictReader((course / f"grades_{assignment}.csv").open(encoding="utf-8"))}
    for student, row in rows.items():
        page = course / "feedback" / student / assignment / f"{assignment}.html"
        assert page.is_file() and page.stat().st_size > 200, f"no feedback for {student} at {page}"
        html = page.read_text(encoding="utf-8")
        assert f"{float(row['score']):g}" in html, f"{student}'s feedback does not show the score {row['score']}"
        assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", html, re.I), (
            f"{student}'s feedback loads something from the network")
    carol = (course / "feedback" / "carol" / assignment / f"{assignment}.html").read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" not in carol, "the broken submission's feedback is a traceback"
    assert (course / "gradebook.db").is_file(), "no nbgrader gradebook written"


@pytest.mark.slow
def test_a_class_that_handed_in_the_chinese_notebook_gets_the_same_scores_and_chinese_feedback(graded_class,
                                                                                                graded_class_zh):
    english, assignment, _ = graded_class
    chinese, _, _ = graded_class_zh

    def table(course):
        rows = csv.DictReader((course / f"grades_{assignment}.csv").open(encoding="utf-8"))
        return {row["student"]: {k: v for k, v in row.items() if k != "problem"} for row in rows}

    assert table(chinese) == table(english), "the Chinese notebooks are not graded like the English ones"
    for student in ("alice", "bob", "carol"):
        page = (chinese / "feedback" / student / assignment / f"{assignment}.html").read_text(encoding="utf-8")
        if student == "carol":  # an unreadable notebook has no language: its page stays in English
            continue
        assert '<html lang="zh-CN">' in page, f"{student}'s feedback page is not marked Chinese"
        assert CJK.search(page), f"{student}'s feedback page has no Chinese"
    bob = (chinese / "feedback" / "bob" / assignment / f"{assignment}.html").read_text(encoding="utf-8")
    failed = re.findall(r'<td class="msg">([^<]+)</td>', bob)
    failed = [m for m in failed if m.strip()]
    assert failed and all(CJK.search(m) for m in failed), f"bob's failed checks are not explained in Chinese: {failed}"
