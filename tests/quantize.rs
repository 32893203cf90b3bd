//! INT8 graphs through ONNX Runtime: they load, run, stay close to FP32, and are made deterministically.

mod common;

use std::path::Path;

use ort::value::Tensor;
use quantbench::data::audio::load_16k;
use quantbench::onnx::proto::tensor_proto::DataType;
use quantbench::onnx::{write_model, Dim, GraphBuilder};
use quantbench::quant::{quantize_folder, Recipe};

fn run(path: &Path, x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut s = quantbench::runtime::session(path, 1).unwrap();
    let input = Tensor::from_array((vec![rows as i64, cols as i64], x.to_vec())).unwrap();
    let out = s.run(ort::inputs! {"x" => input}).unwrap();
    out["y"].try_extract_tensor::<f32>().unwrap().1.to_vec()
}

/// A two-layer MLP with seeded weights: y = gelu-free relu(x · W1 + b) · W2.
fn mlp(dir: &Path) -> std::path::PathBuf {
    let mut seed = 7u32;
    let mut rnd = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let mut g = GraphBuilder::new();
    let x = g.input("x", DataType::Float, &[Dim::Named("n"), Dim::Fixed(64)]);
    let w1: Vec<f32> = (0..64 * 128).map(|_| rnd() * 0.3).collect();
    let b1: Vec<f32> = (0..128).map(|_| rnd() * 0.1).collect();
    let w2: Vec<f32> = (0..128 * 32).map(|_| rnd() * 0.3).collect();
    let w1 = g.f32_init("w1", &[64, 128], &w1);
    let b1 = g.f32_init("b1", &[128], &b1);
    let w2 = g.f32_init("w2", &[128, 32], &w2);
    let h = g.op("MatMul", &[&x, &w1], vec![]);
    let h = g.op("Add", &[&h, &b1], vec![]);
    let h = g.op("Relu", &[&h], vec![]);
    g.op_into("MatMul", &[&h, &w2], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::Named("n"), Dim::Fixed(32)]);
    let path = dir.join("mlp.onnx");
    write_model(&g.finish("mlp", 17), &path).unwrap();
    path
}

#[test]
fn dynamic_int8_small_graph_runs_in_ort_within_error_bounds() {
    common::context().init_runtime(&mut |_| {}).unwrap();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    mlp(src.path());
    quantize_folder(
        src.path(),
        dst.path(),
        &["mlp.onnx"],
        Recipe::Dynamic,
        &mut |_| {},
    )
    .unwrap();
    let x: Vec<f32> = (0..8 * 64)
        .map(|i| (i * 7919 % 211) as f32 / 105.0 - 1.0)
        .collect();
    let fp = run(&src.path().join("mlp.onnx"), &x, 8, 64);
    let q = run(&dst.path().join("mlp.onnx"), &x, 8, 64);
    let scale = fp.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max_err = fp
        .iter()
        .zip(&q)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("max |error| {max_err} over output range {scale}");
    // Two quantized layers with 8-bit activations and weights: errors of a few percent of the range.
    assert!(
        max_err <= 0.03 * scale,
        "max error {max_err} vs output range {scale}"
    );
    assert!(
        max_err > 0.0,
        "the INT8 graph must actually differ from FP32"
    );
}

#[test]
fn weight_only_int8_small_graph_is_closer_to_fp32_than_dynamic() {
    common::context().init_runtime(&mut |_| {}).unwrap();
    let src = tempfile::tempdir().unwrap();
    mlp(src.path());
    let x: Vec<f32> = (0..8 * 64)
        .map(|i| (i * 7919 % 211) as f32 / 105.0 - 1.0)
        .collect();
    let fp = run(&src.path().join("mlp.onnx"), &x, 8, 64);
    let mut errs = Vec::new();
    for recipe in [Recipe::Weights, Recipe::Dynamic] {
        let dst = tempfile::tempdir().unwrap();
        quantize_folder(src.path(), dst.path(), &["mlp.onnx"], recipe, &mut |_| {}).unwrap();
        let q = run(&dst.path().join("mlp.onnx"), &x, 8, 64);
        errs.push(
            fp.iter()
                .zip(&q)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs())),
        );
    }
    let scale = fp.iter().fold(0f32, |m, v| m.max(v.abs()));
    eprintln!(
        "max |error|: weights {} dynamic {} (range {scale})",
        errs[0], errs[1]
    );
    assert!(
        errs[0] > 0.0 && errs[0] <= 0.02 * scale,
        "weight-only error {}",
        errs[0]
    );
    assert!(errs[0] < errs[1], "float activations must beat 8-bit ones");
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn int8_encoder_keeps_cosine_similarity_on_real_audio_and_quantizing_is_deterministic() {
    let ctx = common::context();
    ctx.init_runtime(&mut |_| {}).unwrap();
    let fp32 = quantbench::models::resolve("whisper-tiny.en", &ctx.cache, &mut |_| {}).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let files = ["encoder_model.onnx"];
    quantize_folder(
        &fp32.onnx_dir,
        a.path(),
        &files,
        Recipe::Dynamic,
        &mut |_| {},
    )
    .unwrap();
    quantize_folder(
        &fp32.onnx_dir,
        b.path(),
        &files,
        Recipe::Dynamic,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        std::fs::read(a.path().join(files[0])).unwrap(),
        std::fs::read(b.path().join(files[0])).unwrap(),
        "same inputs must give byte-identical models"
    );

    let audio = load_16k(&common::repo().join("datasets/speech-en/librispeech/1995-1837-0001.wav"))
        .unwrap();
    let mel = quantbench::models::whisper::features::MelExtractor::new(80).compute(&audio.samples);
    let window = mel.window(0);
    let encode = |path: &Path| -> Vec<f32> {
        let mut s = quantbench::runtime::session(path, ctx.threads).unwrap();
        let x = Tensor::from_array((vec![1i64, 80, 3000], window.clone())).unwrap();
        let out = s.run(ort::inputs! {"input_features" => x}).unwrap();
        out["last_hidden_state"]
            .try_extract_tensor::<f32>()
            .unwrap()
            .1
            .to_vec()
    };
    let f = encode(&fp32.onnx_dir.join(files[0]));
    let q = encode(&a.path().join(files[0]));
    let c = cosine(&f, &q);
    eprintln!("encoder cosine similarity INT8 vs FP32: {c:.5}");
    assert!(c >= 0.99, "encoder cosine similarity {c}");
}
