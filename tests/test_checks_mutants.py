"""The harness of the check suites (tests/_checks_mutants.py): every mutant file is written in its one
dialect, a malformed one is a clear error, and a mutant notebook changes only what its file says."""
from __future__ import annotations

import os
import re

import pytest

from _checks_mutants import ROOT, Mutant, bug_cell, mutant_notebook, mutants_of, read_mutant
from _grading import solved_notebook


def test_every_mutant_file_is_in_the_one_dialect():
    folder = os.path.join(ROOT, "tests", "mutants")
    for assignment in sorted(os.listdir(folder)):
        assert mutants_of(assignment), f"tests/mutants/{assignment}/ holds no mutant"


def test_a_mutant_file_with_several_changes(tmp_path):
    path = tmp_path / "two_slips.py"
    path.write_text("# fails: test_a test_b\n# two slips in one notebook\n"
                    "# replaces: f\ndef f():\n    # note: a comment, not a directive\n    return 1\n\n"
                    "# appends-bug: sdpa_no_scaling as scaled_dot_product_attention\n"
                    "# appends:\nX = 2\n", encoding="utf-8")
    mutant = read_mutant(str(path))
    assert mutant.name == "two_slips" and mutant.fails == ["test_a", "test_b"]
    assert mutant.replaces == {"f": "def f():\n    # note: a comment, not a directive\n    return 1\n\n"}
    assert mutant.appends == [bug_cell("sdpa_no_scaling", "scaled_dot_product_attention"), "X = 2\n"]
    assert mutant.appends[0].rstrip().endswith("scaled_dot_product_attention = sdpa_no_scaling")


@pytest.mark.parametrize("text, message", [
    ("# replaces: f\n# fails: test_a\nx = 1\n", "the first line must be `# fails: test_a test_b`"),
    ("# fails: test_a\nx = 1\n# replaces: f\n", "line 2: code before the first `# replaces:` or `# appends:` line"),
    ("# fails: test_a\n# appends: yes\nx = 1\n", "line 2: `# appends:` takes no value, got 'yes'"),
    ("# fails: test_a\n# appends-bug: sdpa_no_scaling\n", "line 2: write `# appends-bug: NAME as TARGET`"),
    ("# fails: test_a\n# appends-bug: no_such_bug as f\n", "no bug 'no_such_bug' in attnlab.course.bugs.CATALOGUE"),
    ("# fails: test_a\n# replaces: f\nx = 1\n# replaces: f\nx = 2\n", "line 4: write `# replaces: GRADE_ID`, once per cell"),
    ("# fails: test_a\n# replaces: f\nx = 1\n# fails: test_b\n", "line 4: `# fails:` belongs on the first line only"),
    ("# fails: test_a\n# only words\n", "changes nothing"),
])
def test_a_malformed_mutant_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "broken.py"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)):
        read_mutant(str(path))


def test_the_mutant_notebook_changes_only_its_cells():
    mutant = Mutant("probe", ["test_mha_mask"], replaces={"multihead_attention": "X = 1\n"}, appends=["Y = 2\n"])
    nb, changed = mutant_notebook("ps04_multihead", mutant)
    solved = solved_notebook("ps04_multihead")
    assert len(nb.cells) == len(solved.cells) + 1
    assert {nb.cells[i - 1].source for i in changed} == {"X = 1\n", "Y = 2\n"}
    assert [c.source for i, c in enumerate(nb.cells, start=1) if i not in changed] == \
        [c.source for c in solved.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "multihead_attention"]
