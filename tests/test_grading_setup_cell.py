"""The exercise notebooks' setup cell (it installs the course on Colab) never reaches the grader.

The worker has no network and must install nothing, so the cell is skipped by its metadata
(``attnlab.course.release.is_setup_cell``) when the submission's code cells are read: it is not in
what the worker is sent. A setup cell that would kill its process if it ran changes no score.
"""
from __future__ import annotations

import nbformat

from _grading import release_notebook, solved_notebook, write
from attnlab.course.release import is_setup_cell
from autograder.grading.runner import grade
from autograder.grading.submission import code_cells

ASSIGNMENT = "ps02_attention"


def test_the_setup_cell_is_not_among_the_cells_sent_to_the_worker():
    nb = release_notebook(ASSIGNMENT)
    assert is_setup_cell(nb.cells[0])
    sent = code_cells(nb)
    assert sent and all(cell["index"] != 1 for cell in sent), "cell 1, the setup cell, would be sent"
    assert not any("COURSE =" in cell["source"] for cell in sent)
    # The same notebook with the marker removed: the cell is an ordinary learner cell and is sent.
    del nb.cells[0].metadata["course"]
    assert code_cells(nb)[0]["index"] == 1


def test_a_setup_cell_that_would_kill_the_worker_changes_no_score(tmp_path):
    nb = solved_notebook(ASSIGNMENT)
    nb.cells[0].source = "import os\nos._exit(3)  # were this cell run, the notebook's process would die here"
    result = grade(ASSIGNMENT, write(nb, tmp_path / "alice" / f"{ASSIGNMENT}.ipynb"))
    assert result.score == result.max_score > 0, [(t.name, t.message) for t in result.tests if not t.passed]
    assert not result.notebook_errors and result.fatal is None
