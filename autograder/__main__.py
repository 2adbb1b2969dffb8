"""``python -m autograder grade --assignment NAME SUBMISSIONS...`` (see autograder/grading/cli.py)."""
import sys

from autograder.grading.cli import main

# The guard matters: a Dask LocalCluster (``--dask local:N``) starts its workers with
# multiprocessing's spawn, which imports this module again in each of them.
if __name__ == "__main__":
    sys.exit(main())
