# quantbench tasks: shorthands for the plain cargo commands the README gives (`just` is optional:
# pip install rust-just).

set shell := ["bash", "-euo", "pipefail", "-c"]

# Run the default experiment (quantbench.toml: whisper tiny.en FP32 on the bundled speech) and write reports/
report *ARGS:
    cargo run --release --quiet -- report {{ARGS}}

# Every test: unit, reference (real models, real speech), bad inputs. Assets are fetched on first use.
test:
    cargo test --release

# Run the default experiment and compare it against the committed baseline (reports/baseline/)
compare *ARGS:
    cargo run --release --quiet -- report --out reports/latest {{ARGS}}
    cargo run --release --quiet -- compare "$(ls reports/baseline/*.json | tail -1)" "$(ls reports/latest/*.json | tail -1)" --md reports/latest/compare-baseline.md

# Formatting and lints as CI expects them
check:
    cargo fmt --check
    cargo clippy --release --all-targets -- -D warnings

# Fetch every pinned asset into the cache
fetch:
    cargo run --release --quiet -- fetch

# Train blip-easyvqa with burn (seeded; about 40 minutes on 2 cores) and write it into assets/blip-easyvqa
train-blip *ARGS:
    cargo run --release --quiet -p quantbench-train -- {{ARGS}}
