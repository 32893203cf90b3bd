#!/usr/bin/env bash
# Merges every shard file in QB_OUT into QB_OUT/merged.json and gates it (exit 3 when a threshold fails).
#   QB                     the quantbench binary (default: quantbench on PATH)
#   QB_OUT                 the shared folder of shard files (default: shards)
#   QB_MAX_DROP            largest accuracy drop in points against fp32 (optional)
#   QB_MIN_RELATIVE        smallest share of fp32's accuracy (optional)
set -euo pipefail
: "${QB:=quantbench}" "${QB_OUT:=shards}"
gate=()
[[ -n "${QB_MAX_DROP:-}" ]] && gate+=(--max-accuracy-drop-points "$QB_MAX_DROP")
[[ -n "${QB_MIN_RELATIVE:-}" ]] && gate+=(--min-relative-accuracy "$QB_MIN_RELATIVE")
shopt -s nullglob
shards=("$QB_OUT"/*-[0-9]*.json)
(( ${#shards[@]} )) || { echo "error: $QB_OUT: no shard files (*-N.json)" >&2; exit 1; }
exec "$QB" merge "${shards[@]}" --json "$QB_OUT/merged.json" "${gate[@]}" \
    --junit "$QB_OUT/junit.xml" --summary "$QB_OUT/summary.md"
