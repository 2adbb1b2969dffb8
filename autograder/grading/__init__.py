"""Safe class-wide grading (see GRADING.md and autograder/checks/README.md).

- ``autograder.protocol`` (one level up) the wire format: JSON + safetensors, never pickle (shared
  with the worker), the worker's ``Limits``, the error kinds and ``StudentError`` (shared with the checks);
- ``worker``     the untrusted side: a template (torch imported once) forks each worker, which
                 builds its sandbox, runs the notebook and answers calls;
- ``sandbox``    the trusted side of a worker: the template, limits, namespaces, cgroups, deadlines,
                 kill (``README.md`` here: the isolation, the limits and what each mode guarantees);
- ``submission`` what a check sees: ``Submission.call / new / get``;
- ``runner``     ``grade``: an assignment's checks against one notebook -> ``GradeResult``;
                 ``grade_each``: several notebooks, each job a grading process of its own (the
                 CLI's and the tests' one way);
- ``gradebook``, ``feedback``, ``cli``   ``python -m autograder grade``;
- ``text``       the one gate for strings from learners (names, messages) into files and the console.
"""
