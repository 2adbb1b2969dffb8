"""``python -m autograder grade --assignment NAME SUBMISSIONS...`` (see autograder/grading/cli.py)."""
import sys

from autograder.grading.cli import main

sys.exit(main())
