//! Model folders in optimum's other layout, a single `decoder_model_merged.onnx` (use_cache_branch), decode
//! exactly as the split layout does: the pipeline relies on file and tensor names only.

mod common;
#[path = "common/merge.rs"]
mod merge;

use quantbench::models::whisper::{DecodeOptions, Pipeline, WhisperModel};

#[test]
fn merged_decoder_folder_gives_the_ctranslate2_tokens() {
    let ctx = common::context();
    ctx.init_runtime(&mut |_| {}).unwrap();
    let resolved = quantbench::models::resolve("whisper-tiny.en", &ctx.cache, &mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("tiny-merged");
    merge::merge_folder(&resolved.onnx_dir, &merged);
    assert!(!merged.join("decoder_model.onnx").exists());

    let model = WhisperModel::open(&merged, ctx.threads).unwrap();
    assert_eq!(model.decoder_file, "decoder_model_merged.onnx");
    assert!(model.decoder_with_past.is_none() && model.step_io.use_cache_branch);
    let mut p = Pipeline::new(model, DecodeOptions::default());

    for (audio, ids, _) in common::reference_tokens("whisper-tiny.en").iter().take(4) {
        let t = common::transcribe_clip(&mut p, audio);
        assert_eq!(&t.tokens, ids, "{audio}: {}", t.text);
    }
}

#[test]
fn folder_without_a_decoder_names_what_is_missing() {
    let ctx = common::context();
    ctx.init_runtime(&mut |_| {}).unwrap();
    let resolved = quantbench::models::resolve("whisper-tiny.en", &ctx.cache, &mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "encoder_model.onnx",
        "tokenizer.json",
        "config.json",
        "decoder_model.onnx",
    ] {
        std::fs::copy(resolved.onnx_dir.join(f), dir.path().join(f)).unwrap();
    }
    let e = WhisperModel::open(dir.path(), 1)
        .err()
        .expect("must fail")
        .to_string();
    assert!(e.contains("decoder_with_past_model.onnx is missing"), "{e}");
}
