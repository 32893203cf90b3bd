#!/usr/bin/env bash
# The long-form reference for tests/longform.rs (run by a developer, never at run time:
# pip install faster-whisper==1.2.1): the recordings of datasets/speech-long composed by quantbench, then
# faster-whisper's transcription of each with the CTranslate2 weights from quantbench's cache.
set -euo pipefail
# (a release build first: cargo build --release)
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./target/release/quantbench compose datasets/speech-long/recordings.toml "$tmp/long"
python3 tools/make_longform_reference.py "${QUANTBENCH_CACHE:-$HOME/.cache/quantbench}" "$tmp/long" \
    tests/fixtures/longform/reference.json
