"""The release: solutions filled from the reference, exercises/ byte-stable and up to date."""
from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from attnlab.course import release
from attnlab import MultiHeadAttention, scaled_dot_product_attention


def test_solution_source_wraps_the_body_and_keeps_signature_and_docstring():
    text = release.solution_source(scaled_dot_product_attention)
    head, _, rest = text.partition("### BEGIN SOLUTION")
    assert head.startswith("def scaled_dot_product_attention(") and '"""' in head
    body, _, tail = rest.partition("### END SOLUTION")
    assert "math.sqrt(d_k)" in body and "math.sqrt" not in head
    assert tail.strip() == ""
    compile(text, "<solution>", "exec")


def test_solution_source_of_a_class_wraps_every_method():
    text = release.solution_source(MultiHeadAttention)
    assert text.startswith("class MultiHeadAttention")
    assert text.count("### BEGIN SOLUTION") == text.count("### END SOLUTION") >= 2
    compile(text, "<solution>", "exec")


def test_unknown_directive_target_is_a_clear_error():
    with pytest.raises(SystemExit, match="cannot find 'attnlab.nope'"):
        release.expand_directives("#| solution-from: attnlab.nope")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("course"))
    return folder, release.build(folder)


@pytest.mark.slow
def test_committed_release_is_a_fresh_generation(course):
    folder, names = course
    assert "ps02_attention" in names
    assert release.differences(folder, names) == [], "run `make exercises` and commit the result"


@pytest.mark.slow
def test_check_detects_a_stale_release(course):
    folder, names = course
    path = os.path.join(folder, "exercises", "ps02_attention", "ps02_attention.ipynb")
    original = open(path, "rb").read()
    try:
        with open(path, "ab") as handle:
            handle.write(b" ")
        assert release.differences(folder, names) == ["exercises/ps02_attention/ps02_attention.ipynb (stale)"]
    finally:
        with open(path, "wb") as handle:
            handle.write(original)


@pytest.mark.slow
def test_release_has_no_solutions_or_hidden_tests(course):
    folder, names = course
    for name in names:
        released = os.path.join(release.ROOT, "exercises", name)
        assert sorted(os.listdir(released)) == [name + ".ipynb"] or not any(f.endswith(".md") for f in os.listdir(released))
        text = open(os.path.join(released, name + ".ipynb"), encoding="utf-8").read()
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "run_check" not in text


def test_release_cli_check_mode_exit_status_is_documented():
    out = subprocess.run([sys.executable, "-m", "attnlab.course.release", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--check" in out.stdout
