#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) in two lanes; crashes land in artifacts/<target>/ and
# the fuzzer goes on (fork mode). Logs: logs/<target>.log. Usage: fuzz/run-all.sh [SECONDS]
set -u
cd "$(dirname "$0")"
secs=${1:-600}
mkdir -p logs
run() {
  local t=$1 len=$2
  mkdir -p "work/$t" "artifacts/$t"
  nice -n 10 cargo +nightly fuzz run -O "$t" "work/$t" "corpus/$t" -- \
    -max_total_time="$secs" -max_len="$len" -rss_limit_mb=4096 -timeout=30 \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -artifact_prefix="artifacts/$t/" > "logs/$t.log" 2>&1
  echo "$t done: $(grep -c 'crash-\|timeout-\|oom-' "logs/$t.log") artifacts lines"
}
lane1() { run ct2 65536; run audio 32768; run image_header 32768; run manifest 4096; }
lane2() { run onnx_quantize 16384; run experiment 4096; run model_config 4096; }
lane1 & lane2 & wait
