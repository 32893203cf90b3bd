//! Every input a fuzz target crashed on, kept in `tests/fixtures/fuzz/<target>/` and replayed through the
//! same code the target drives: each must now end in a result or an error, never a panic.
//! (The onnx_quantize inputs were found by running the target on the code before issue 15's fixes: a
//! MatMul with no output indexed `output[0]`.)

use std::path::{Path, PathBuf};

use quantbench::quant::{quantize_folder, Calibration, Recipe};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The onnx_quantize target's body: the bytes as a graph file, quantized with three recipes.
fn quantize_bytes(bytes: &[u8]) -> Vec<Result<(), String>> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("g.onnx"), bytes).unwrap();
    let calibration = Calibration {
        stats: Default::default(),
        sha256: String::new(),
        clips: 0,
        smoothing: Default::default(),
        origin: None,
        seconds: 0.0,
    };
    [
        (Recipe::Dynamic, None),
        (Recipe::Weights, None),
        (Recipe::Static, Some(&calibration)),
    ]
    .into_iter()
    .map(|(recipe, cal)| {
        let dst = dir.path().join(recipe.name());
        std::fs::create_dir(&dst).unwrap();
        quantize_folder(&src, &dst, &["g.onnx"], recipe, cal, &mut |_| {})
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .collect()
}

#[test]
fn onnx_quantize_crashes_are_errors_now() {
    let files = inputs("onnx_quantize");
    assert!(!files.is_empty(), "the crash inputs are in the repository");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let outcome = std::panic::catch_unwind(|| quantize_bytes(&bytes));
        let results = outcome.unwrap_or_else(|_| panic!("{} panics again", f.display()));
        for r in results {
            let e = r.expect_err("a MatMul without an output is not a graph to quantize");
            assert!(
                e.contains("g.onnx") && e.contains("has no output"),
                "{}: {e}",
                f.display()
            );
        }
    }
}

#[test]
fn every_other_targets_crash_inputs_are_replayed_without_a_panic() {
    use quantbench::data::audio::{decode_16k, AudioLimits};
    for f in inputs("audio") {
        let bytes = std::fs::read(&f).unwrap();
        let len = bytes.len() as u64;
        let limits = AudioLimits { max_seconds: 60.0 };
        let _ = decode_16k(&f, std::io::Cursor::new(bytes), len, &limits);
    }
    for f in inputs("image_header") {
        let _ = quantbench::data::image::decode_rgb(&std::fs::read(&f).unwrap());
    }
    for f in inputs("ct2") {
        let bytes = std::fs::read(&f).unwrap();
        if let Ok(m) = quantbench::models::whisper::ct2::Ct2Model::parse(&f, &bytes) {
            if let Ok(d) = quantbench::models::whisper::export::dims(&m) {
                let _ = quantbench::models::whisper::export::graphs(&m, &d);
            }
        }
    }
    for f in inputs("experiment") {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        let _ = quantbench::config::Experiment::parse(&f, &text);
    }
}
