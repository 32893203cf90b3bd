//! Model folders in optimum's other layout, a single `decoder_model_merged.onnx` (use_cache_branch), decode
//! exactly as the split layout does: the pipeline relies on file and tensor names only.

mod common;
#[path = "common/merge.rs"]
mod merge;

use quantbench::models::whisper::{DecodeOptions, Pipeline, WhisperModel};

/// tiny.en's FP32 folder in the merged layout, in a temporary folder: (context, that folder, the merged one).
fn merged_tiny() -> (
    quantbench::engine::Context,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let ctx = common::context();
    ctx.init_runtime(&mut |_| {}).unwrap();
    let resolved = quantbench::models::resolve("whisper-tiny.en", &ctx.cache, &mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("tiny-merged");
    merge::merge_folder(&resolved.onnx_dir, &merged);
    (ctx, dir, merged)
}

#[test]
fn merged_decoder_folder_gives_the_ctranslate2_tokens() {
    let (ctx, _dir, merged) = merged_tiny();
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

/// Tokens of the first clips through a folder's pipeline.
fn tokens_of(
    dir: &std::path::Path,
    threads: usize,
    clips: &[(String, Vec<i64>, String)],
) -> Vec<Vec<i64>> {
    let model = WhisperModel::open(dir, threads).unwrap();
    let mut p = Pipeline::new(model, DecodeOptions::default());
    clips
        .iter()
        .map(|(audio, _, _)| common::transcribe_clip(&mut p, audio).tokens)
        .collect()
}

fn part<'a>(
    s: &'a quantbench::quant::QuantSummary,
    file: &str,
) -> &'a quantbench::quant::PartSummary {
    s.parts.iter().find(|p| p.file == file).unwrap()
}

/// Quantizing (and calibrating, and fusing) reaches into the merged decoder's `If` branches: the merged
/// folder's INT8 decodes token for token as the split folder's INT8 does, each branch's ops are counted,
/// and the weights both branches read are stored once.
#[test]
fn merged_decoder_folder_quantizes_as_the_split_layout_does() {
    use quantbench::quant::Recipe;
    let (ctx, dir, merged) = merged_tiny();
    let clips: Vec<_> = common::reference_tokens("whisper-tiny.en")
        .into_iter()
        .take(4)
        .collect();
    let setup = quantbench::engine::QuantSetup::default();
    for recipe in [Recipe::Dynamic, Recipe::Static] {
        let quantize = |spec: &str, out: &str| {
            quantbench::engine::quantize(
                spec,
                recipe,
                &setup,
                Some(&dir.path().join(out)),
                false,
                &ctx,
                &mut |_| {},
            )
            .unwrap()
        };
        let name = recipe.name();
        let (split_dir, split) = quantize("whisper-tiny.en", &format!("split-{name}"));
        let (merged_dir, joined) = quantize(merged.to_str().unwrap(), &format!("merged-{name}"));
        assert_eq!(
            tokens_of(&merged_dir, ctx.threads, &clips),
            tokens_of(&split_dir, ctx.threads, &clips),
            "{name}"
        );

        let (a, b) = (
            part(&split, "decoder_model.onnx"),
            part(&split, "decoder_with_past_model.onnx"),
        );
        let m = part(&joined, "decoder_model_merged.onnx");
        let quantized = |p: &quantbench::quant::PartSummary| -> usize {
            p.ops.values().map(|c| c.quantized).sum()
        };
        assert_eq!(
            quantized(m),
            quantized(a) + quantized(b),
            "{name}: {:?}",
            m.ops
        );
        assert!(quantized(m) > 0);
        let mut fusions = a.fusions.clone();
        for (op, n) in &b.fusions {
            *fusions.entry(op.clone()).or_default() += n;
        }
        assert_eq!(m.fusions, fusions, "{name}");
        let size = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().len();
        let (one, shared) = (
            size(split_dir.join("decoder_model.onnx")),
            size(merged_dir.join("decoder_model_merged.onnx")),
        );
        assert!(
            (shared as f64) < 1.2 * one as f64,
            "{name}: merged INT8 decoder {shared} bytes, split no-cache decoder {one}: weights stored twice?"
        );
    }

    // An ignored scope names nodes inside the branches as well.
    let inside = "then/model.decoder.layers.0.fc1/MatMul";
    let mut setup = quantbench::engine::QuantSetup::default();
    setup.ignored.names.push(inside.into());
    let (_, summary) = quantbench::engine::quantize(
        merged.to_str().unwrap(),
        Recipe::Dynamic,
        &setup,
        Some(&dir.path().join("merged-ignored")),
        false,
        &ctx,
        &mut |_| {},
    )
    .unwrap();
    let m = part(&summary, "decoder_model_merged.onnx");
    assert!(
        m.left_in_float.iter().any(|why| why.starts_with(inside)),
        "{:?}",
        m.left_in_float
    );
}
