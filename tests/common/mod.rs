#![allow(dead_code)]
//! Shared set-up for integration tests: the real runtime and models from the asset cache (fetched on
//! first use, as the product does).

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use quantbench::assets::Cache;
use quantbench::engine::{open_variant, Context};
use quantbench::models::whisper::Pipeline;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn context() -> Context {
    Context {
        cache: Cache::new(None, None),
        ort_library: None,
        threads: quantbench::runtime::default_threads(),
        cancel: Default::default(),
        audio_limits: Default::default(),
    }
}

/// Opens a built-in model once per test binary (tests in one binary share it behind a mutex).
pub fn pipeline(name: &'static str) -> &'static Mutex<Pipeline> {
    static TINY: OnceLock<Mutex<Pipeline>> = OnceLock::new();
    static BASE: OnceLock<Mutex<Pipeline>> = OnceLock::new();
    let cell = if name == "whisper-base" { &BASE } else { &TINY };
    cell.get_or_init(|| {
        let opened = open_variant(
            name,
            quantbench::config::Variant::Fp32,
            &Default::default(),
            &context(),
            &mut |_| {},
        )
        .expect("model opens");
        Mutex::new(opened.pipeline)
    })
}

pub fn reference() -> serde_json::Value {
    let text =
        std::fs::read_to_string(repo().join("tests/fixtures/whisper_reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// CTranslate2's greedy token ids for each reference clip of `model`: (clip path under datasets/speech-en, ids, text).
pub fn reference_tokens(model: &str) -> Vec<(String, Vec<i64>, String)> {
    let r = reference();
    r["transcripts"][model]
        .as_object()
        .unwrap()
        .iter()
        .map(|(audio, want)| {
            let ids = want["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            (
                audio.clone(),
                ids,
                want["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Transcribes a bundled clip (path relative to datasets/speech-en).
pub fn transcribe_clip(p: &mut Pipeline, clip: &str) -> quantbench::models::whisper::Transcription {
    let a =
        quantbench::data::audio::load_16k(&repo().join("datasets/speech-en").join(clip)).unwrap();
    p.transcribe(&a.samples).unwrap()
}

/// Runs the quantbench binary from the repository's root.
pub fn quantbench(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("binary runs")
}
