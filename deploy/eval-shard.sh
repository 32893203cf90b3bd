#!/usr/bin/env bash
# One shard of a sharded `quantbench eval`, as a Slurm array task or a Kubernetes Indexed Job pod runs it.
# The shard comes from the batch system: Slurm's SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT, or
# Kubernetes' JOB_COMPLETION_INDEX with QB_SHARDS (the Job's completions).
#   QB           the quantbench binary (default: quantbench on PATH)
#   QB_MODEL     model name or folder (required)
#   QB_MANIFEST  speech or VQA manifest, or easy-vqa:test (required)
#   QB_VARIANTS  variants to evaluate, space-separated (default: fp32)
#   QB_OUT       shared folder the shard files go to (default: shards)
#   QB_LIMIT     only the first N items of the manifest (default: 0 = all)
set -euo pipefail
: "${QB:=quantbench}" "${QB_MODEL:?set QB_MODEL}" "${QB_MANIFEST:?set QB_MANIFEST}"
: "${QB_VARIANTS:=fp32}" "${QB_OUT:=shards}" "${QB_LIMIT:=0}"
shard=()
if [[ -n "${JOB_COMPLETION_INDEX:-}" ]]; then
    shard=(--shard-count "${QB_SHARDS:?set QB_SHARDS to the completions of the Job}")
    index="$JOB_COMPLETION_INDEX"
else
    index="${SLURM_ARRAY_TASK_ID:?not in a Slurm array or Kubernetes Indexed Job}"
fi
mkdir -p "$QB_OUT"
for variant in $QB_VARIANTS; do
    "$QB" eval --model "$QB_MODEL" --variant "$variant" --manifest "$QB_MANIFEST" --limit "$QB_LIMIT" \
        "${shard[@]}" --json "$QB_OUT/$variant-$index.json"
done
