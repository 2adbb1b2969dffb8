"""ps09_bug_hunt through the sandboxed worker (`_checks_mutants.AssignmentSuite`): the solution
passes every check, the release none, each mutant in tests/mutants/ps09_bug_hunt/ fails the checks
it must (the right variants among them pass them all).

And the bug hunt's own rules:
- the notebook shows the snippets of the check module anonymously (renamed, no docstring, no ``# BUG``);
- it holds no correct version of what the learner fixes (no given attention, masked softmax,
  multi-head attention or positional encoding; fewer than half of the lines of each fix);
- no substantive line of a snippet is printed by appendix A or the bug catalogue, so the snippets
  cannot be matched with the book's text;
- the symptoms the grader measures are the ones the solution states, and the course's reference
  functions show none of them (the statements describe bugs, not features).
"""
from __future__ import annotations

import os
import re

import nbformat
import pytest

from _checks_mutants import ROOT, AssignmentSuite
from attnlab.course.release import snippet_source
from autograder import checks

SNIPPETS = {"attention_snippet": "attention_v1", "multihead_snippet": "MultiHeadAttentionV1",
            "encoding_snippet": "encoding_v1"}
FIXES = ("fixed_attention", "fixed_multihead", "fixed_positional_encoding")


def code_lines(source: str) -> list[str]:
    """The substantive lines of some code: stripped, without comments, docstrings, blank lines,
    def/class lines and bare keywords (``else:``, ``pass``, ``return x``)."""
    lines = []
    in_docstring = False
    for line in source.splitlines():
        text = line.strip()
        if text.startswith(('"""', "'''")):
            in_docstring = not (len(text) > 3 and text.endswith(('"""', "'''"))) and not in_docstring
            continue
        if in_docstring:
            continue
        text = re.sub(r"\s+#.*$", "", text)
        if (not text or text.startswith(("#", "def ", "class ", "@")) or text in ("else:", "pass", "super().__init__()")
                or re.fullmatch(r"return \w+", text)):
            continue
        lines.append(text)
    return lines


def released_cells():
    path = os.path.join(ROOT, "exercises", "ps09_bug_hunt", "ps09_bug_hunt.ipynb")
    return nbformat.read(path, as_version=4).cells


class TestPs09(AssignmentSuite):
    ASSIGNMENT = "ps09_bug_hunt"
    release_messages = {  # what the blank release's failure says, for two of its checks
        "test_attention_symptoms": "does not define `attention_symptoms`",
        "test_fixed_attention": "NotImplementedError",
    }

    def test_the_release_shows_each_snippet_anonymously(self):
        module = checks.load(self.ASSIGNMENT)
        sources = [c.source for c in released_cells() if c.cell_type == "code"]
        for name, alias in SNIPPETS.items():
            snippet = snippet_source(getattr(module, name), alias)
            assert snippet in sources, f"the notebook does not show {name} as {alias}"
            assert "BUG" not in snippet and name not in snippet and '"""' not in snippet

    def test_the_notebook_holds_no_correct_version_of_what_is_fixed(self):
        with open(os.path.join(ROOT, "solutions", self.ASSIGNMENT, self.ASSIGNMENT + ".md"), encoding="utf-8") as handle:
            source = handle.read()
        for reference in ("attnlab.attention", "attnlab.multihead", "attnlab.positional", "attnlab.transformer"):
            assert f"source-from: {reference}" not in source and f"solution-from: {reference}" not in source, reference
        given = [c.source for c in released_cells() if c.cell_type == "code"
                 and not c.metadata.get("nbgrader", {}).get("solution") and not c.metadata.get("nbgrader", {}).get("grade")]
        for name in ("scaled_dot_product_attention", "masked_softmax", "MultiHeadAttention", "sinusoidal_positional_encoding"):
            assert not any(re.search(rf"^(def|class) {name}\b", cell, re.M) for cell in given), name
        given_lines = {line for cell in given for line in code_lines(cell)}
        solved = {c.metadata["nbgrader"]["grade_id"]: c.source for c in self.source_cells()
                  if c.metadata.get("nbgrader", {}).get("solution")}
        for fix in FIXES:
            lines = code_lines(solved[fix])
            shared = [line for line in lines if line in given_lines]
            assert lines and len(shared) < len(lines) / 2, (fix, shared)

    def test_no_snippet_line_is_printed_by_appendix_a_or_the_catalogue(self):
        module = checks.load(self.ASSIGNMENT)
        book = {}
        for rel in ("book/appA_bug_hunt.md", "attnlab/course/bugs.py"):
            with open(os.path.join(ROOT, rel), encoding="utf-8") as handle:
                book[rel] = {re.sub(r"\s+", " ", line) for line in code_lines(handle.read())}
        for name, alias in SNIPPETS.items():
            for line in code_lines(snippet_source(getattr(module, name), alias)):
                if len(line) < 25 or line.endswith(":"):  # `for pos in range(max_len):` and the like are everybody's
                    continue
                for rel, lines in book.items():
                    assert re.sub(r"\s+", " ", line) not in lines, f"{alias}: {line!r} is printed in {rel}"

    @pytest.mark.parametrize("question, snippet, function, truth", [
        ("attention", "attention_snippet", ("attnlab.attention", "scaled_dot_product_attention"), {"a", "b", "e"}),
        ("multihead", "multihead_snippet", ("attnlab.multihead", "MultiHeadAttention"), {"a", "d"}),
        ("encoding", "encoding_snippet", ("attnlab.positional", "sinusoidal_positional_encoding"), {"b", "e"}),
    ])
    def test_the_measured_symptoms_are_the_solutions_and_the_reference_shows_none(self, question, snippet, function, truth):
        import importlib

        module = checks.load(self.ASSIGNMENT)
        measure = getattr(module, f"{question}_symptoms_of")
        assert measure(getattr(module, snippet)) == truth
        assert measure(getattr(importlib.import_module(function[0]), function[1])) == set()
        solved = {c.metadata["nbgrader"]["grade_id"]: c.source for c in self.source_cells()
                  if c.metadata.get("nbgrader", {}).get("solution")}
        answer = re.search(rf'^{question}_symptoms = "(\w+)"', solved[f"{question}_symptoms_answer"], re.M).group(1)
        assert set(answer) == truth
