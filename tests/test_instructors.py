"""The planning data of the instructors' page (book/instructors.md) names only what exists.

The page keeps its data as literals in code cells (``OBJECTIVES``, ``PREREQUISITES``, ``HOURS``,
``PACING``, ``MISCONCEPTIONS``, ``BUG_CHAPTER``), which the build renders into tables. These tests
read the literals without building the book and hold them against the course: the chapters of
``_toc.yml``, the assignments and their ``POINTS`` (``autograder.checks``), the mutants in
``tests/mutants/`` and their ``# fails:`` headers, the bug catalogue, and the ``#| source-from:``
lines that make a later exercise carry an earlier one's answers. Each rule is a function that
returns the problems it finds; the last tests feed it broken data to show that it can fail.
"""
from __future__ import annotations

import ast
import copy
import os
import re
from pathlib import Path

import jupytext
import pytest

from attnlab.course import bugs, release
from autograder import checks

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "instructors.md"
MUTANTS = ROOT / "tests" / "mutants"
DATA = ("OBJECTIVES", "PREREQUISITES", "HOURS", "PACING", "MISCONCEPTIONS", "BUG_CHAPTER")
# the first word of a measurable objective ("understand" and "know" are not)
VERBS = {"assemble", "build", "choose", "compare", "compute", "convert", "count", "derive", "diagnose", "explain",
         "fix", "identify", "implement", "measure", "predict", "set", "state", "train", "verify", "write"}
WHEN = {"mid-week", "end"}


# --------------------------------------------------------------------------------------------
# What the page says, and what the course holds
# --------------------------------------------------------------------------------------------
def page_data(path: Path = PAGE) -> dict:
    """Every ``NAME = literal`` (upper-case name) at the top level of the page's code cells."""
    found = {}
    for cell in jupytext.read(path, fmt="md:myst").cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(cell.source).body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id.isupper()):
                try:
                    found[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    pass  # computed, not data
    return found


def label(page: str) -> str:
    return os.path.basename(page).split("_", 1)[0]


def course() -> dict:
    """The chapters (toc order), the assignments with their points, chapters and given answers."""
    exercise = {label(release.chapter_of(a, str(ROOT))): a for a in release.assignments(str(ROOT))}
    chapters = [label(p) for p in release.book_pages(str(ROOT))
                if re.fullmatch(r"ch\d\d", label(p)) or label(p) in exercise]
    targets = {a: set(release.solution_targets(a, str(ROOT))) for a in exercise.values()}
    carries = {}
    for a in exercise.values():
        text = (ROOT / "solutions" / a / f"{a}.md").read_text(encoding="utf-8")
        given = {name for line in text.splitlines() if line.startswith("#| source-from:")
                 for name in line.split(":", 1)[1].split()}
        carries[a] = {b for b in exercise.values() if b != a and given & targets[b]}
    return {"chapters": chapters, "exercise": exercise, "chapter_of": {a: c for c, a in exercise.items()},
            "points": {a: checks.load(a).POINTS for a in checks.assignments()}, "carries": carries,
            "replaces": {bug.replaces for bug in bugs.CATALOGUE.values()}}


def mutant_fails(assignment: str, mutant: str) -> set[str] | None:
    """The checks a mutant's ``# fails:`` header names; None when there is no such mutant."""
    path = MUTANTS / assignment / f"{mutant}.py"
    if not path.is_file():
        return None
    first = path.read_text(encoding="utf-8").splitlines()[0]
    return set(first.split(":", 1)[1].split()) if first.startswith("# fails:") else set()


# --------------------------------------------------------------------------------------------
# The rules: each returns a list of problems, empty when the data is right
# --------------------------------------------------------------------------------------------
def objective_problems(data: dict, c: dict) -> list[str]:
    problems = []
    objectives = data.get("OBJECTIVES", {})
    for chapter in c["chapters"]:
        listed = objectives.get(chapter)
        if not listed:
            problems.append(f"{chapter}: no learning objectives")
            continue
        if not 3 <= len(listed) <= 5:
            problems.append(f"{chapter}: {len(listed)} objectives, expected 3 to 5")
        assignment = c["exercise"].get(chapter)
        points = c["points"].get(assignment, {})
        assessed = set()
        for text, grade_ids in listed:
            verb = text.split()[0].lower()
            if verb not in VERBS:
                problems.append(f"{chapter}: objective starts with {verb!r}, not a measurable verb: {text[:60]!r}")
            for grade_id in grade_ids:
                if grade_id not in points:
                    problems.append(f"{chapter}: objective {text[:40]!r} names {grade_id!r}, "
                                    f"not a check of {assignment or 'its (missing) assignment'}")
            assessed |= set(grade_ids)
        missing = sorted(set(points) - assessed)
        if missing:
            problems.append(f"{chapter}: checks of {assignment} that no objective names: {', '.join(missing)}")
    extra = sorted(set(objectives) - set(c["chapters"]))
    if extra:
        problems.append(f"objectives for pages that are not chapters: {', '.join(extra)}")
    return problems


def prerequisite_problems(data: dict, c: dict) -> list[str]:
    problems = []
    prerequisites = data.get("PREREQUISITES", {})
    order = {chapter: i for i, chapter in enumerate(c["chapters"])}
    if set(prerequisites) != set(c["chapters"]):
        problems.append(f"prerequisites for {sorted(prerequisites)}, chapters are {c['chapters']}")
    for chapter, needs in prerequisites.items():
        for need in needs:
            if need not in order or chapter not in order or order[need] >= order[chapter]:
                problems.append(f"{chapter} needs {need!r}, which is not an earlier chapter")
    return problems


def hours_problems(data: dict, c: dict) -> list[str]:
    problems = []
    hours = data.get("HOURS", {})
    if set(hours) != set(c["chapters"]):
        problems.append(f"hours for {sorted(hours)}, chapters are {c['chapters']}")
    for chapter, (reading, exercise) in hours.items():
        if not 0 < reading <= 10:
            problems.append(f"{chapter}: {reading} hours of reading")
        if (exercise > 0) != (chapter in c["exercise"]):
            problems.append(f"{chapter}: {exercise} hours of exercise, but it "
                            f"{'has' if chapter in c['exercise'] else 'has no'} exercise")
    return problems


def pacing_problems(data: dict, c: dict) -> list[str]:
    """Each plan covers every chapter and every assignment exactly once, in weeks 1, 2, ...; a
    chapter comes no earlier than its prerequisites; an exercise is due no earlier than its chapter
    and strictly after every exercise whose answers it carries (it is released after their deadline)."""
    problems = []
    plans = data.get("PACING", {})
    if len(plans) < 2:
        problems.append(f"expected two pacing plans, found {list(plans)}")
    for plan, weeks in plans.items():
        if [w["week"] for w in weeks] != list(range(1, len(weeks) + 1)):
            problems.append(f"{plan}: weeks are {[w['week'] for w in weeks]}, not 1, 2, ...")
        read = [chapter for w in weeks for chapter in w["chapters"]]
        due = [a for w in weeks for a, _ in w["due"]]
        for what, listed, expected in (("chapter", read, c["chapters"]), ("assignment", due, list(c["points"]))):
            for name in sorted(set(listed) | set(expected)):
                if listed.count(name) != 1:
                    problems.append(f"{plan}: {what} {name} appears {listed.count(name)} times")
        week_of = {chapter: w["week"] for w in weeks for chapter in w["chapters"]}
        deadline = {a: (w["week"], 0 if when == "mid-week" else 1) for w in weeks for a, when in w["due"]}
        for w in weeks:
            for a, when in w["due"]:
                if when not in WHEN:
                    problems.append(f"{plan}: {a} is due {when!r}, not one of {sorted(WHEN)}")
            if not w.get("activity", "").strip():
                problems.append(f"{plan}: week {w['week']} has no in-class activity")
        for chapter, needs in data.get("PREREQUISITES", {}).items():
            for need in needs:
                if chapter in week_of and need in week_of and week_of[need] > week_of[chapter]:
                    problems.append(f"{plan}: {chapter} (week {week_of[chapter]}) before its prerequisite "
                                    f"{need} (week {week_of[need]})")
        for a, (week, _) in deadline.items():
            chapter = c["chapter_of"].get(a)
            if chapter in week_of and week < week_of[chapter]:
                problems.append(f"{plan}: {a} due in week {week}, before its chapter {chapter} (week {week_of[chapter]})")
            for earlier in c["carries"].get(a, ()):
                if earlier in deadline and deadline[earlier] >= deadline[a]:
                    problems.append(f"{plan}: {a} carries the answers of {earlier}, but is due no later than it")
    return problems


def misconception_problems(data: dict, c: dict) -> list[str]:
    problems = []
    rows = data.get("MISCONCEPTIONS", [])
    for chapter in c["chapters"]:
        if sum(row[0] == chapter for row in rows) < 2:
            problems.append(f"{chapter}: fewer than two misconceptions")
    for chapter, belief, truth, assignment, grade_ids, mutant in rows:
        where = f"{chapter} {belief[:40]!r}"
        if chapter not in c["chapters"]:
            problems.append(f"{where}: {chapter!r} is not a chapter")
        if not belief.strip() or not truth.strip():
            problems.append(f"{where}: an empty belief or correction")
        if assignment not in c["points"]:
            problems.append(f"{where}: no assignment {assignment!r}")
            continue
        if not grade_ids:
            problems.append(f"{where}: names no check")
        for grade_id in grade_ids:
            if grade_id not in c["points"][assignment]:
                problems.append(f"{where}: {grade_id!r} is not a check of {assignment}")
        fails = mutant_fails(assignment, mutant)
        if fails is None:
            problems.append(f"{where}: no mutant tests/mutants/{assignment}/{mutant}.py")
        elif not set(grade_ids) <= fails:
            problems.append(f"{where}: mutant {mutant} does not fail {sorted(set(grade_ids) - fails)} "
                            f"(its header: {sorted(fails)})")
    return problems


def bug_week_problems(data: dict, c: dict) -> list[str]:
    mapping = data.get("BUG_CHAPTER", {})
    problems = [f"the catalogue has bugs replacing {name!r}, which BUG_CHAPTER does not place"
                for name in sorted(c["replaces"] - set(mapping))]
    problems += [f"BUG_CHAPTER places {name!r} in {chapter!r}, not a chapter"
                 for name, chapter in mapping.items() if chapter not in c["chapters"]]
    return problems


RULES = (objective_problems, prerequisite_problems, hours_problems, pacing_problems, misconception_problems,
         bug_week_problems)


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data() -> dict:
    return page_data()


@pytest.fixture(scope="module")
def the_course() -> dict:
    return course()


def test_the_page_holds_its_data(data):
    assert set(DATA) <= set(data), f"book/instructors.md lacks {sorted(set(DATA) - set(data))}"


def test_the_course_is_what_the_rules_expect(the_course):
    # the rules are only as good as this picture of the course
    assert the_course["chapters"][0] == "ch00" and "appA" in the_course["chapters"]
    assert set(the_course["exercise"].values()) == set(the_course["points"])
    assert the_course["carries"]["ps07_transformer"] >= {"ps02_attention", "ps06_transformer_block"}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_planning_data(rule, data, the_course):
    problems = rule(data, the_course)
    assert not problems, "book/instructors.md:\n  " + "\n  ".join(problems)


def broken(data: dict, edit) -> dict:
    changed = copy.deepcopy(data)
    edit(changed)
    return changed


def _misspell(d):
    chapter, belief, truth, assignment, grade_ids, mutant = d["MISCONCEPTIONS"][0]
    d["MISCONCEPTIONS"][0] = (chapter, belief, truth, assignment, [grade_ids[0] + "s"], mutant)


def _check_not_failed_by_mutant(d):
    for i, (chapter, belief, truth, assignment, grade_ids, mutant) in enumerate(d["MISCONCEPTIONS"]):
        fails = mutant_fails(assignment, mutant) or set()
        other = sorted(set(checks.load(assignment).POINTS) - fails)
        if other:
            d["MISCONCEPTIONS"][i] = (chapter, belief, truth, assignment, [other[0]], mutant)
            return
    raise AssertionError("every mutant fails every check")


def _swap_deadlines(d):
    weeks = d["PACING"]["13-week course"]
    weeks[5]["due"], weeks[6]["due"] = weeks[6]["due"], weeks[5]["due"]  # ps07 before ps06, which it carries


def _unassessed_check(d):
    text, grade_ids = d["OBJECTIVES"]["ch02"][-1]
    d["OBJECTIVES"]["ch02"][-1] = (text, grade_ids[1:])


BREAKAGES = {
    "a misspelt grade_id": (misconception_problems, _misspell),
    "a mutant that does not fail the named check": (misconception_problems, _check_not_failed_by_mutant),
    "a mutant that does not exist": (misconception_problems, lambda d: d["MISCONCEPTIONS"].append(
        ("ch02",) + tuple(d["MISCONCEPTIONS"][-1][1:5]) + ("no_such_mutant",))),
    "a chapter without objectives": (objective_problems, lambda d: d["OBJECTIVES"].pop("ch05")),
    "an objective that is not measurable": (objective_problems, lambda d: d["OBJECTIVES"]["ch03"].__setitem__(
        0, ("Understand " + d["OBJECTIVES"]["ch03"][0][0], d["OBJECTIVES"]["ch03"][0][1]))),
    "a check that no objective assesses": (objective_problems, _unassessed_check),
    "an objective naming another assignment's check": (objective_problems, lambda d: d["OBJECTIVES"]["ch01"][0][1].append(
        "test_masked_softmax")),
    "a chapter missing from a plan": (pacing_problems, lambda d: d["PACING"]["6-week module"][0]["chapters"].remove("ch01")),
    "a chapter twice in a plan": (pacing_problems, lambda d: d["PACING"]["6-week module"][1]["chapters"].append("ch01")),
    "an assignment twice in a plan": (pacing_problems, lambda d: d["PACING"]["13-week course"][9]["due"].append(
        ("ps01_rnn_limits", "end"))),
    "an assignment missing from a plan": (pacing_problems, lambda d: d["PACING"]["13-week course"][9].__setitem__("due", [])),
    "an exercise due before one whose answers it carries": (pacing_problems, _swap_deadlines),
    "a prerequisite that comes later": (prerequisite_problems, lambda d: d["PREREQUISITES"]["ch02"].append("ch04")),
    "an exercise's hours on a chapter without one": (hours_problems, lambda d: d["HOURS"].__setitem__("ch00", (1.0, 2.0))),
    "a kind of bug that no chapter takes": (bug_week_problems, lambda d: d["BUG_CHAPTER"].pop("train_step")),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_the_rules_can_fail(name, data, the_course):
    rule, edit = BREAKAGES[name]
    assert not rule(data, the_course), "the page's own data must pass first"
    assert rule(broken(data, edit), the_course), f"{rule.__name__} did not notice {name}"


def test_a_misspelt_grade_id_in_the_page_fails(tmp_path, the_course):
    """The whole path, from the page's text: one grade_id misspelt in the source is reported."""
    text = PAGE.read_text(encoding="utf-8")
    assert text.count('["test_causal_order"]') == 1
    page = tmp_path / "instructors.md"
    page.write_text(text.replace('["test_causal_order"]', '["test_casual_order"]'), encoding="utf-8")
    problems = misconception_problems(page_data(page), the_course)
    assert any("test_casual_order" in problem for problem in problems), problems


def test_the_intro_states_the_hours_of_the_plan(data):
    """The landing page's "About N hours in all" is the sum of the page's HOURS, rounded."""
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    stated = re.search(r"About (\d+) hours in all", intro)
    assert stated, "book/intro.md should say 'About N hours in all' (N = the sum of HOURS in book/instructors.md)"
    total = sum(sum(hours) for hours in data["HOURS"].values())
    assert int(stated.group(1)) == round(total), f"book/intro.md says {stated.group(1)} hours, HOURS sums to {total:g}"
