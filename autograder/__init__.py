"""The grader of the course "Attention and Transformers, from scratch": checks (``checks``), the
sandboxed grading of a class (``grading``, ``python -m autograder grade``) and their wire format (``protocol``)."""
