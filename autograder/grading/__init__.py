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
- ``cli``        ``python -m autograder grade`` and ``merge``, a pipeline of the four modules below;
- ``collect``    the class, read as hostile, and the stable shard of each student (``--shard K/N``);
- ``cache``      each student's cached result (``.autograder/``), the checks' fingerprint, ``merge``'s rules;
- ``schedule``   where to grade: this machine's pool (``grade_each``) or a Dask cluster (``--dask``);
- ``remote``     what a Dask worker runs for one submission: it checks its node, then ``grade``;
- ``record``     the outputs, written by the coordinator alone: gradebook, feedback, cache entry, CSV;
- ``gradebook``, ``feedback``   nbgrader's SQLite gradebook, the per-student HTML page;
- ``text``       the one gate for strings from learners (names, messages) into files and the console.
"""
