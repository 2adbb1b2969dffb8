"""Helpers for the grading tests: build learner notebooks from the release and grade them."""
from __future__ import annotations

import os
import re

import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)


def release_notebook(assignment: str):
    return nbformat.read(os.path.join(ROOT, "exercises", assignment, assignment + ".ipynb"), as_version=4)


def solved_notebook(assignment: str):
    """The release with every solution cell filled from the source notebook: a perfect learner."""
    source = nbformat.read(os.path.join(ROOT, "solutions", assignment, assignment + ".ipynb"), as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: MARKERS.sub("", c.source)
               for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    nb = release_notebook(assignment)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def with_cells(nb, replace: dict[str, str] | None = None, append: list[str] = ()):
    """Replace the cells with these grade_ids and append new code cells."""
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if replace and grade_id in replace:
            cell.source = replace[grade_id]
    for source in append:
        cell = nbformat.v4.new_code_cell(source)
        if nb.nbformat_minor < 5:
            cell.pop("id", None)  # cell ids exist from nbformat 4.5 on
        nb.cells.append(cell)
    return nb


def write(nb, path) -> str:
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    nbformat.write(nb, str(path))
    return str(path)


def mutant_header(path: str) -> dict[str, str]:
    """The ``# key: value`` lines at the top of a mutant or hostile fixture."""
    meta = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"#\s*([a-z-]+):\s*(.*)", line)
            if match:
                meta[match.group(1)] = match.group(2).strip()
    return meta
