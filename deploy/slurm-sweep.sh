#!/usr/bin/env bash
# One minitwin sweep across a Slurm cluster: an array of 8 tasks, each running every 8th run
# from its index (`--shards 8` reads SLURM_ARRAY_TASK_ID, less SLURM_ARRAY_TASK_MIN, so
# `--array=1-8` works as well as 0-7). Each task writes its shard table under the shared
# results directory; merge once the array is done:
#
#   sbatch deploy/slurm-sweep.sh
#   sbatch --dependency=afterok:<jobid> --wrap "minitwin merge results/steady/sweep"
#
#SBATCH --job-name=minitwin-sweep
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=02:00:00
#SBATCH --output=minitwin-sweep-%A-%a.log
set -euo pipefail
SHARDS=8   # = the number of array tasks
exec minitwin sweep scenarios/steady.toml \
  --seeds 50 \
  --axis topology.stores.shards=2,4,8 \
  --shards "$SHARDS" \
  --jobs "${SLURM_CPUS_PER_TASK:-1}" \
  --quiet --out results
