"""Safe class-wide grading (see GRADING.md and autograder/checks/README.md).

- ``autograder.protocol`` (one level up) the wire format: JSON + safetensors, never pickle (shared
  with the worker), the worker's ``Limits``, the error kinds and ``StudentError`` (shared with the checks);
- ``worker``     the untrusted process: builds its sandbox, runs the notebook, answers calls;
- ``sandbox``    the trusted side of a worker: limits, namespaces, cgroups, deadlines, kill
                 (``README.md`` here: the isolation, the limits and what each mode guarantees);
- ``submission`` what a check sees: ``Submission.call / new / get``;
- ``runner``     ``grade``: an assignment's checks against one notebook -> ``GradeResult``;
                 ``grade_each``: several notebooks in parallel (the CLI's and the tests' one way);
- ``gradebook``, ``feedback``, ``cli``   ``python -m autograder grade``;
- ``text``       the one gate for strings from learners (names, messages) into files and the console.
"""
