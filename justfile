# quantbench tasks. Get `just` with: pip install rust-just

set shell := ["bash", "-euo", "pipefail", "-c"]

# Run the default experiment (quantbench.toml: whisper tiny.en FP32 on the bundled speech) and write reports/
report *ARGS:
    cargo run --release --quiet -- report {{ARGS}}

# Every test: unit, reference (real models, real speech), bad inputs. Fetches assets on first use.
test:
    cargo build --release --quiet
    ./target/release/quantbench fetch onnxruntime whisper-tiny.en whisper-base easy-vqa
    cargo test --release -- --test-threads 1

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
