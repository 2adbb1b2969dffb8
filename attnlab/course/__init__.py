"""Helpers of the book and the exercise notebooks, built on the library (``attnlab``):

- ``experiments``  small seeded experiments the chapters run at build time;
- ``bugs``         the catalogue of instructive bugs (appendix A, the bug hunt, the mutants);
- ``interop``      copies our weights into PyTorch's own modules (chapters 6-7, parity tests);
- ``selfcheck``    the learners' self-checks inside the exercise notebooks;
- ``compare``      the one tensor comparison behind the self-checks and the grader's checks;
- ``diagrams``     the book's diagrams, drawn as SVG, every word from ``book/diagrams/labels.en.yml``;
- ``setup_cell``   the exercise notebooks' first cell's marker (light: the grader imports it);
- ``release``      builds the source notebooks and the nbgrader release (``python -m attnlab.course.release``).

The library never imports this subpackage.
"""
