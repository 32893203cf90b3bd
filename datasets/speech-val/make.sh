#!/usr/bin/env bash
# Rebuilds speech-val from the project's shared data: Harvard sentences 21-60 spoken by Debian festival
# (festvox-us-slt-hts) and FSDD test clips (take 0 of each digit, speakers nicolas and theo).
# Needs: apt-get install festival festvox-us-slt-hts sox. Run from the repository root.
set -euo pipefail
shared=${1:-../shared/datasets}
out=datasets/speech-val
: > "$out/manifest.jsonl"
for i in $(seq 21 60); do
  text=$(sed -n "${i}p" "$shared/text/harvard.txt")
  f=$(printf "harvard/harvard_%02d.wav" "$i")
  printf '%s\n' "$text" > /tmp/harvard-line.txt
  text2wave -eval '(voice_cmu_us_slt_arctic_hts)' /tmp/harvard-line.txt -o /tmp/harvard-line.wav
  sox /tmp/harvard-line.wav -r 16000 -c 1 -b 16 "$out/$f"
  python3 -c 'import json,sys; print(json.dumps({"audio": sys.argv[1], "text": sys.argv[2], "source": "Harvard sentences (IEEE 1969), line "+sys.argv[3]+" of tidyverse/stringr data-raw/harvard-sentences.txt; synthesized with Debian festival 2.5.0 + festvox-us-slt-hts 0.2010.10.25-4 (CMU ARCTIC slt HTS voice)", "license": "text: IEEE 1969 Harvard sentences (widely treated as public domain); voice: festvox-us-slt-hts (BSD-style CMU/HTS licence)", "synthetic": True}))' "$f" "$text" "$i" >> "$out/manifest.jsonl"
done
for speaker in nicolas theo; do
  for d in 0 1 2 3 4 5 6 7 8 9; do
    src="$shared/speech/fsdd/recordings/${d}_${speaker}_0.wav"
    cp "$src" "$out/fsdd/"
    python3 - "$shared/speech/fsdd/manifest.jsonl" "recordings/${d}_${speaker}_0.wav" >> "$out/manifest.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    item = json.loads(line)
    if item["audio"] == sys.argv[2]:
        item["audio"] = "fsdd/" + sys.argv[2].split("/")[-1]
        print(json.dumps(item))
PY
  done
done
