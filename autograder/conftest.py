"""Run one assignment's checks with plain pytest, against a notebook in a sandboxed worker:

    .venv/bin/python -m pytest autograder/checks/test_ps02_attention.py --submission alice.ipynb

(The grading CLI does not use pytest; it calls the same test functions itself.)
"""
from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--submission", help="the learner's notebook to check")


@pytest.fixture(scope="module")
def submission(request):
    from autograder.grading.submission import Submission

    path = request.config.getoption("--submission")
    if not path:
        pytest.skip("give a notebook with --submission PATH")
    module = request.module
    sub = Submission.from_notebook(path, skip_grade_ids=set(getattr(module, "POINTS", {})),
                                   limits=getattr(module, "LIMITS", None))
    yield sub
    sub.close()
