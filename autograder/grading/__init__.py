"""Safe class-wide grading (see GRADING.md and autograder/checks/README.md).

- ``protocol``   the wire format: JSON + safetensors, never pickle (shared with the worker);
- ``worker``     the untrusted process: builds its sandbox, runs the notebook, answers calls;
- ``sandbox``    the trusted side of a worker: limits, namespaces, timeouts, kill;
- ``submission`` what a check sees: ``Submission.call / new / get``;
- ``runner``     runs an assignment's checks against one notebook -> ``GradeResult``;
- ``gradebook``, ``feedback``, ``cli``   ``python -m autograder grade``.
"""
