#!/bin/bash
# Grade a class on a Slurm cluster with nothing but the course's own grader: a job array in which
# array task K grades shard K of N, then one job that merges the shards into the gradebook.
#
#   mkdir -p grading/logs
#   jobid=$(sbatch --parsable --array=0-7 --export=ALL,SHARDS=8 autograder/examples/slurm_grade.sh)
#   sbatch --dependency=afterany:$jobid --export=ALL,SHARDS=8 autograder/examples/slurm_grade.sh
#
# Shards are numbered from 0 (--array=0-7 for 8 shards). A student belongs to one shard, chosen by a
# hash of the student id, so every task agrees without talking to the others. The second job is not
# an array: it merges shard-0 ... shard-(N-1) (exit 2 if one is missing or was graded with other
# checks). An array task that exits 1 had internal errors: run that index again
# (sbatch --array=3 --export=ALL,SHARDS=8 ...), then the merge job.
#
# Run it from the course checkout on a shared file system; every node needs the same checkout and
# virtual environment (`make venv`) and a kernel that lets `unshare` make namespaces: the first line
# of each task's log says the sandbox mode, which must be `root` or `user`.
#SBATCH --job-name=grade
#SBATCH --cpus-per-task=4
#SBATCH --mem-per-cpu=4G
#SBATCH --time=01:00:00
#SBATCH --output=grading/logs/%x-%A_%a.out
set -euo pipefail

ASSIGNMENT=${ASSIGNMENT:-ps02_attention}
SUBMITTED=${SUBMITTED:-submitted}           # nbgrader's submitted/<student>/<assignment>/
RESULTS=${RESULTS:-grading/$ASSIGNMENT}     # one folder per shard: $RESULTS/shard-K
COURSE=${COURSE:-.}                         # where the merge writes gradebook.db, feedback/ and the CSV
PYTHON=${PYTHON:-.venv/bin/python}
SHARDS=${SHARDS:-${SLURM_ARRAY_TASK_COUNT:-}}
[[ -n "$SHARDS" ]] || { echo "set SHARDS=N (the number of array tasks)" >&2; exit 2; }
cd "${SLURM_SUBMIT_DIR:-.}"

if [[ -n "${SLURM_ARRAY_TASK_ID:-}" ]]; then
    exec "$PYTHON" -m autograder grade --assignment "$ASSIGNMENT" --submitted "$SUBMITTED" --quiet \
        --shard "$SLURM_ARRAY_TASK_ID/$SHARDS" --course "$RESULTS/shard-$SLURM_ARRAY_TASK_ID" \
        --jobs "${SLURM_CPUS_PER_TASK:-1}"
fi
shards=()
for ((k = 0; k < SHARDS; k++)); do shards+=("$RESULTS/shard-$k"); done
exec "$PYTHON" -m autograder merge "${shards[@]}" --assignment "$ASSIGNMENT" --course "$COURSE"
