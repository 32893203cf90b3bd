#!/usr/bin/env bash
# Queues the evaluation array and the merge as a dependent job. Example:
#   QB_MODEL=whisper-tiny.en QB_MANIFEST=datasets/speech-en/manifest.jsonl QB_VARIANTS="fp32 dynamic" \
#   QB_OUT=$PWD/shards QB_MAX_DROP=1.0 deploy/slurm/submit.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
array=$(sbatch --parsable --export=ALL deploy/slurm/eval.sbatch)
sbatch --export=ALL --dependency="afterok:${array%%;*}" deploy/slurm/merge.sbatch
