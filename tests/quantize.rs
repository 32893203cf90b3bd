//! INT8 graphs through ONNX Runtime: they load, run, stay close to FP32, and are made deterministically.

mod common;

use std::path::Path;

use ort::value::Tensor;
use quantbench::data::audio::load_16k;
use quantbench::onnx::proto::tensor_proto::DataType;
use quantbench::onnx::{write_model, Dim, GraphBuilder};
use quantbench::quant::calib::{Estimator, TensorStats};
use quantbench::quant::{
    instrument_folder, observe, quantize_folder, smooth_folder, Calibration, IgnoredScope,
    QuantOptions, Recipe, SmoothAlpha, StaticParams,
};

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
        None,
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
        quantize_folder(
            src.path(),
            dst.path(),
            &["mlp.onnx"],
            recipe,
            None,
            &mut |_| {},
        )
        .unwrap();
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

/// Runs the instrumented copy of `dir`'s mlp on `x` and gathers the statistics of what it exposes.
fn calibrate(dir: &Path, x: &[f32], rows: usize) -> Calibration {
    let work = tempfile::tempdir().unwrap();
    let observed = instrument_folder(
        dir,
        work.path(),
        &["mlp.onnx"],
        &QuantOptions {
            fusion: false,
            ..Recipe::Static.into()
        },
    )
    .unwrap();
    let acts = &observed["mlp.onnx"];
    assert_eq!(acts.len(), 2, "both MatMul inputs are observed: {acts:?}");
    let mut s = quantbench::runtime::session(&work.path().join("mlp.onnx"), 1).unwrap();
    let input = Tensor::from_array((vec![rows as i64, 64], x.to_vec())).unwrap();
    let out = s.run(ort::inputs! {"x" => input}).unwrap();
    let mut stats = std::collections::HashMap::new();
    for (name, k) in acts {
        let mut st = TensorStats::new(*k);
        let v = &out[format!("{}{name}", observe::PREFIX).as_str()];
        st.observe(v.try_extract_tensor::<f32>().unwrap().1)
            .unwrap();
        stats.insert(name.clone(), st);
    }
    Calibration {
        stats: [("mlp.onnx".to_string(), stats)].into_iter().collect(),
        sha256: "test".into(),
        clips: 1,
        smoothing: Default::default(),
        origin: None,
        seconds: 0.0,
    }
}

fn max_abs_err(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn static_int8_small_graph_with_smoothing_and_bias_correction() {
    common::context().init_runtime(&mut |_| {}).unwrap();
    let src = tempfile::tempdir().unwrap();
    mlp(src.path());
    // Inputs with one outlier channel (×20), the case SmoothQuant is for.
    let x: Vec<f32> = (0..32 * 64)
        .map(|i| {
            let v = (i * 7919 % 211) as f32 / 105.0 - 1.0;
            if i % 64 == 5 {
                v * 20.0
            } else {
                v
            }
        })
        .collect();
    let fp = run(&src.path().join("mlp.onnx"), &x, 32, 64);
    let scale = fp.iter().fold(0f32, |m, v| m.max(v.abs()));

    // Smoothing alone leaves the float function unchanged.
    let first = calibrate(src.path(), &x, 32);
    let smoothed = tempfile::tempdir().unwrap();
    let alpha = SmoothAlpha {
        encoder: Some(0.5),
        decoder: Some(0.5),
    };
    let reports = smooth_folder(
        src.path(),
        smoothed.path(),
        &["mlp.onnx"],
        &first.stats,
        alpha,
        &IgnoredScope::default(),
    )
    .unwrap();
    assert_eq!(reports["mlp.onnx"].matmuls, 2);
    assert_eq!(
        reports["mlp.onnx"].scale_nodes, 2,
        "no LayerNorm to fold into"
    );
    let fs = run(&smoothed.path().join("mlp.onnx"), &x, 32, 64);
    assert!(
        max_abs_err(&fp, &fs) <= 1e-4 * scale,
        "smoothing changed the float output"
    );

    let quantize = |dir: &Path, smooth: bool, bias_correction: bool| -> f32 {
        let mut cal = calibrate(dir, &x, 32);
        if smooth {
            cal.smoothing = reports.clone();
        }
        let dst = tempfile::tempdir().unwrap();
        let options = QuantOptions {
            recipe: Recipe::Static,
            ignored: IgnoredScope::default(),
            params: StaticParams {
                estimator: Estimator::MinMax,
                bias_correction,
                ..StaticParams::default()
            },
            parts: Default::default(),
            fusion: true,
        };
        let summary = quantize_folder(
            dir,
            dst.path(),
            &["mlp.onnx"],
            options,
            Some(&cal),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(summary.parts[0].ops["MatMul"].quantized, 2);
        assert_eq!(
            summary.parts[0].bias_corrected,
            Some(usize::from(bias_correction))
        );
        assert_eq!(summary.calibration_sha256.as_deref(), Some("test"));
        max_abs_err(&fp, &run(&dst.path().join("mlp.onnx"), &x, 32, 64))
    };
    let plain = quantize(src.path(), false, false);
    let smooth = quantize(smoothed.path(), true, false);
    let corrected = quantize(smoothed.path(), true, true);
    eprintln!("static max |error|: plain {plain} smoothed {smooth} +bias correction {corrected} (range {scale})");
    assert!(plain > 0.0 && plain <= 0.05 * scale, "static error {plain}");
    assert!(
        smooth < plain,
        "SmoothQuant must help with an outlier channel"
    );
    assert!(corrected <= 0.05 * scale);
    // Without statistics the static recipe refuses to run.
    let dst = tempfile::tempdir().unwrap();
    let e = quantize_folder(
        src.path(),
        dst.path(),
        &["mlp.onnx"],
        Recipe::Static,
        None,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("calibration"), "{e}");
}

/// The first 30 s window of a bundled clip's log-mel features.
fn first_window(clip: &str) -> Vec<f32> {
    let audio = load_16k(&common::repo().join(clip)).unwrap();
    quantbench::models::whisper::features::MelExtractor::new(80)
        .compute(&audio.samples)
        .window(0)
}

/// Every output of an encoder graph on one window, by name.
fn encoder_outputs(
    path: &Path,
    window: &[f32],
    threads: usize,
) -> std::collections::HashMap<String, Vec<f32>> {
    let mut s = quantbench::runtime::session(path, threads).unwrap();
    let x = Tensor::from_array((vec![1i64, 80, 3000], window.to_vec())).unwrap();
    let out = s.run(ort::inputs! {"input_features" => x}).unwrap();
    out.iter()
        .map(|(name, v)| {
            (
                name.to_string(),
                v.try_extract_tensor::<f32>().unwrap().1.to_vec(),
            )
        })
        .collect()
}

const UNSEEN_CLIP: &str = "datasets/speech-en/librispeech/1995-1837-0001.wav";

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
        None,
        &mut |_| {},
    )
    .unwrap();
    quantize_folder(
        &fp32.onnx_dir,
        b.path(),
        &files,
        Recipe::Dynamic,
        None,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        std::fs::read(a.path().join(files[0])).unwrap(),
        std::fs::read(b.path().join(files[0])).unwrap(),
        "same inputs must give byte-identical models"
    );

    let window = first_window(UNSEEN_CLIP);
    let encode =
        |path: &Path| encoder_outputs(path, &window, ctx.threads)["last_hidden_state"].clone();
    let f = encode(&fp32.onnx_dir.join(files[0]));
    let q = encode(&a.path().join(files[0]));
    let c = cosine(&f, &q);
    eprintln!("encoder cosine similarity INT8 vs FP32: {c:.5}");
    assert!(c >= 0.99, "encoder cosine similarity {c}");
}

#[test]
fn smoothquant_leaves_the_real_encoder_unchanged_in_float() {
    let ctx = common::context();
    ctx.init_runtime(&mut |_| {}).unwrap();
    let fp32 = quantbench::models::resolve("whisper-tiny.en", &ctx.cache, &mut |_| {}).unwrap();
    let files = ["encoder_model.onnx"];
    let window = first_window(UNSEEN_CLIP);
    let run_encoder = |path: &Path| encoder_outputs(path, &window, ctx.threads);
    let work = tempfile::tempdir().unwrap();
    let observed = instrument_folder(
        &fp32.onnx_dir,
        work.path(),
        &files,
        &QuantOptions {
            fusion: false,
            ..Recipe::Static.into()
        },
    )
    .unwrap();
    let outputs = run_encoder(&work.path().join(files[0]));
    let mut stats = std::collections::HashMap::new();
    for (name, k) in &observed[files[0]] {
        let mut st = TensorStats::new(*k);
        st.observe(&outputs[&format!("{}{name}", observe::PREFIX)])
            .unwrap();
        stats.insert(name.clone(), st);
    }
    let smoothed = tempfile::tempdir().unwrap();
    let reports = smooth_folder(
        &fp32.onnx_dir,
        smoothed.path(),
        &files,
        &[(files[0].to_string(), stats)].into_iter().collect(),
        SmoothAlpha {
            encoder: Some(0.5),
            decoder: None,
        },
        &IgnoredScope::default(),
    )
    .unwrap();
    let r = &reports[files[0]];
    assert_eq!(r.matmuls, 24, "{r:?}");
    assert_eq!(
        r.folded_into_layernorm, 8,
        "q/k/v and fc1 follow a LayerNorm in each of 4 layers"
    );
    let f = &outputs["last_hidden_state"];
    let s = &run_encoder(&smoothed.path().join(files[0]))["last_hidden_state"];
    let c = cosine(f, s);
    eprintln!(
        "smoothed vs original encoder, float: cosine {c:.7}, max |diff| {}",
        max_abs_err(f, s)
    );
    assert!(
        c > 0.99999,
        "smoothing changed the float encoder: cosine {c}"
    );
}

/// Encoder activation statistics from the instrumented float encoder on the given clips.
fn encoder_stats(
    fp32_dir: &Path,
    clips: &[&str],
    threads: usize,
) -> std::collections::HashMap<String, TensorStats> {
    let work = tempfile::tempdir().unwrap();
    let files = ["encoder_model.onnx"];
    let observed = instrument_folder(
        fp32_dir,
        work.path(),
        &files,
        &QuantOptions {
            fusion: false,
            ..Recipe::Static.into()
        },
    )
    .unwrap();
    let mut stats: std::collections::HashMap<String, TensorStats> = observed[files[0]]
        .iter()
        .map(|(n, k)| (n.clone(), TensorStats::new(*k)))
        .collect();
    for clip in clips {
        let out = encoder_outputs(&work.path().join(files[0]), &first_window(clip), threads);
        for (name, st) in stats.iter_mut() {
            st.observe(&out[&format!("{}{name}", observe::PREFIX)])
                .unwrap();
        }
    }
    stats
}

#[test]
fn static_int8_encoder_keeps_cosine_similarity_on_unseen_real_audio_and_is_deterministic() {
    let ctx = common::context();
    ctx.init_runtime(&mut |_| {}).unwrap();
    let fp32 = quantbench::models::resolve("whisper-tiny.en", &ctx.cache, &mut |_| {}).unwrap();
    let files = ["encoder_model.onnx"];
    let stats = encoder_stats(
        &fp32.onnx_dir,
        &[
            "datasets/speech-calib/harvard/harvard_01.wav",
            "datasets/speech-calib/cards/005.wav",
        ],
        ctx.threads,
    );
    let calibration = Calibration {
        stats: [(files[0].to_string(), stats)].into_iter().collect(),
        sha256: "two clips".into(),
        clips: 2,
        smoothing: Default::default(),
        origin: None,
        seconds: 0.0,
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dst in [&a, &b] {
        let s = quantize_folder(
            &fp32.onnx_dir,
            dst.path(),
            &files,
            Recipe::Static,
            Some(&calibration),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(s.parts[0].ops["MatMul"].quantized, 24);
        assert_eq!(s.parts[0].bias_corrected, Some(20), "k_proj has no bias");
    }
    assert_eq!(
        std::fs::read(a.path().join(files[0])).unwrap(),
        std::fs::read(b.path().join(files[0])).unwrap(),
        "same statistics must give byte-identical models"
    );
    let window = first_window(UNSEEN_CLIP);
    let encode =
        |path: &Path| encoder_outputs(path, &window, ctx.threads)["last_hidden_state"].clone();
    let c = cosine(
        &encode(&fp32.onnx_dir.join(files[0])),
        &encode(&a.path().join(files[0])),
    );
    eprintln!("static INT8 encoder cosine similarity vs FP32 on unseen audio: {c:.5}");
    assert!(c >= 0.99, "static encoder cosine similarity {c}");
}

/// Three MatMuls in a chain; the middle one's weight has one huge value per column, so per-column int8
/// rounds every other weight of it to zero: the op made deliberately sensitive.
fn chain_with_a_sensitive_op(dir: &Path) {
    let mut seed = 11u32;
    let mut rnd = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let mut g = GraphBuilder::new();
    let x = g.input("x", DataType::Float, &[Dim::Named("n"), Dim::Fixed(32)]);
    let mut weight = |name: &str, outlier: bool| {
        let mut w: Vec<f32> = (0..32 * 32).map(|_| rnd() * 0.3).collect();
        if outlier {
            for col in 0..32 {
                w[(col * 7 % 32) * 32 + col] = 40.0;
            }
        }
        g.f32_init(name, &[32, 32], &w)
    };
    let (wa, wb, wc) = (weight("wa", false), weight("wb", true), weight("wc", false));
    let bias = g.f32_init("bb", &[32], &[0.1; 32]);
    let h = g.op_named("first", "MatMul", &[&x, &wa], vec![]);
    let h = g.op_named("sensitive", "MatMul", &[&h, &wb], vec![]);
    let h = g.op("Add", &[&h, &bias], vec![]);
    g.op_into_named("last", "MatMul", &[&h, &wc], vec![], &["y"]);
    g.output("y", DataType::Float, &[Dim::Named("n"), Dim::Fixed(32)]);
    write_model(&g.finish("chain", 17), &dir.join("chain.onnx")).unwrap();
}

#[test]
fn sensitivity_ranks_the_deliberately_sensitive_op_first_and_leaves_the_float_path_alone() {
    use quantbench::quant::sensitivity::{ranking, shadow_folder, OpError};
    common::context().init_runtime(&mut |_| {}).unwrap();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    chain_with_a_sensitive_op(src.path());
    let options = QuantOptions::from(Recipe::Dynamic);
    let pairs = shadow_folder(src.path(), dst.path(), &["chain.onnx"], &options, None).unwrap();
    assert_eq!(pairs["chain.onnx"].len(), 3);
    // The sensitive op is compared after its bias Add.
    let sensitive = pairs["chain.onnx"]
        .iter()
        .find(|p| p.op == "sensitive")
        .unwrap();
    assert!(sensitive.float_output.starts_with("add"), "{sensitive:?}");

    let x: Vec<f32> = (0..16 * 32)
        .map(|i| (i * 7919 % 211) as f32 / 105.0 - 1.0)
        .collect();
    let mut s = quantbench::runtime::session(&dst.path().join("chain.onnx"), 1).unwrap();
    let input = Tensor::from_array((vec![16i64, 32], x.clone())).unwrap();
    let out = s.run(ort::inputs! {"x" => input}).unwrap();
    let get = |name: &str| {
        out[format!("{}{name}", observe::PREFIX).as_str()]
            .try_extract_tensor::<f32>()
            .unwrap()
            .1
            .to_vec()
    };
    let mut errors = std::collections::BTreeMap::new();
    for p in &pairs["chain.onnx"] {
        let mut e = OpError::default();
        e.add(&get(&p.float_output), &get(&p.quantized_output))
            .unwrap();
        errors.insert(("chain.onnx".to_string(), p.op.clone()), e);
    }
    let y = out["y"].try_extract_tensor::<f32>().unwrap().1.to_vec();
    drop(out);
    assert_eq!(
        y,
        run(&src.path().join("chain.onnx"), &x, 16, 32),
        "shadows changed the float path"
    );
    let ranked = ranking(&pairs, &errors);
    assert_eq!(ranked[0].op, "sensitive", "{ranked:?}");
    assert!(
        ranked[0].nmse.unwrap() > 2.0 * ranked[1].nmse.unwrap(),
        "{ranked:?}"
    );
}

/// A vocabulary-wide projection onto a graph output goes to MatMulNBits (8-bit blocks); ONNX Runtime runs
/// it within a small error of FP32 and with the same argmax per row.
#[test]
fn vocabulary_projection_becomes_matmul_nbits_and_keeps_the_argmax() {
    common::context().init_runtime(&mut |_| {}).unwrap();
    let (k, vocab) = (64usize, quantbench::quant::nbits::MIN_COLUMNS + 40);
    let mut seed = 11u32;
    let mut rnd = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[Dim::Named("n"), Dim::Fixed(k as i64)],
    );
    let w: Vec<f32> = (0..k * vocab).map(|_| rnd()).collect();
    let w = g.f32_init("proj_out.weight", &[k, vocab], &w);
    g.op_into_named("proj_out/MatMul", "MatMul", &[&x, &w], vec![], &["y"]);
    g.output(
        "y",
        DataType::Float,
        &[Dim::Named("n"), Dim::Fixed(vocab as i64)],
    );
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_model(&g.finish("logits", 17), &src.path().join("m.onnx")).unwrap();
    let summary = quantize_folder(
        src.path(),
        dst.path(),
        &["m.onnx"],
        Recipe::Dynamic,
        None,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(summary.parts[0].ops["MatMul"].quantized, 1);
    let graph = quantbench::onnx::read_model(&dst.path().join("m.onnx"))
        .unwrap()
        .graph
        .unwrap();
    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type()).collect();
    assert_eq!(ops, ["MatMulNBits"]);

    let rows = 6;
    let x: Vec<f32> = (0..rows * k).map(|_| rnd() * 4.0).collect();
    let fp = run(&src.path().join("m.onnx"), &x, rows, k);
    let q = run(&dst.path().join("m.onnx"), &x, rows, k);
    let range = fp.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = fp
        .iter()
        .zip(&q)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err <= 0.02 * range, "max error {err} vs range {range}");
    let argmax = |v: &[f32]| -> Vec<usize> {
        v.chunks(vocab)
            .map(|r| (0..vocab).max_by(|&i, &j| r[i].total_cmp(&r[j])).unwrap())
            .collect()
    };
    assert_eq!(argmax(&fp), argmax(&q));
}

/// A projection tied to the token embedding (its weight is the table transposed, as Whisper's `proj_out`)
/// goes to 4-bit MatMulNBits with the top candidates rescored from the table's int8 rows: the same argmax
/// as FP32 per row, the rescored logits within int8's error, and the table stored once.
#[test]
fn tied_vocabulary_projection_is_4_bit_with_rescored_top_candidates() {
    common::context().init_runtime(&mut |_| {}).unwrap();
    let (k, vocab) = (64usize, quantbench::quant::nbits::MIN_COLUMNS + 40);
    let mut seed = 17u32;
    let mut rnd = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let table: Vec<f32> = (0..vocab * k).map(|_| rnd()).collect();
    let mut transposed = vec![0f32; k * vocab];
    for v in 0..vocab {
        for r in 0..k {
            transposed[r * vocab + v] = table[v * k + r];
        }
    }
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[Dim::Named("n"), Dim::Fixed(k as i64)],
    );
    let ids = g.input("ids", DataType::Int64, &[Dim::Named("n")]);
    let t = g.f32_init("embed_tokens.weight", &[vocab, k], &table);
    let w = g.f32_init("proj_out.weight", &[k, vocab], &transposed);
    let e = g.op("Gather", &[&t, &ids], vec![]);
    let h = g.op("Add", &[&x, &e], vec![]);
    g.op_into_named("proj_out/MatMul", "MatMul", &[&h, &w], vec![], &["y"]);
    g.output(
        "y",
        DataType::Float,
        &[Dim::Named("n"), Dim::Fixed(vocab as i64)],
    );
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_model(&g.finish("tied", 17), &src.path().join("m.onnx")).unwrap();
    quantize_folder(
        src.path(),
        dst.path(),
        &["m.onnx"],
        Recipe::Dynamic,
        None,
        &mut |_| {},
    )
    .unwrap();
    let model = quantbench::onnx::read_model(&dst.path().join("m.onnx")).unwrap();
    let graph = model.graph.unwrap();
    let nbits: Vec<_> = graph
        .node
        .iter()
        .filter(|n| n.op_type() == "MatMulNBits")
        .collect();
    assert_eq!(nbits.len(), 1);
    assert!(nbits[0]
        .attribute
        .iter()
        .any(|a| a.name() == "bits" && a.i() == 4));
    for op in ["TopK", "ScatterElements"] {
        assert!(graph.node.iter().any(|n| n.op_type() == op), "no {op}");
    }
    // One int8 copy of the table serves the embedding and the rescoring; no float table is left.
    let int8_tables = graph
        .initializer
        .iter()
        .filter(|t| t.dims == [vocab as i64, k as i64])
        .map(|t| t.data_type())
        .collect::<Vec<_>>();
    assert_eq!(int8_tables, [DataType::Int8 as i32]);

    let rows = 6;
    let xs: Vec<f32> = (0..rows * k).map(|_| rnd() * 4.0).collect();
    let id: Vec<i64> = (0..rows as i64).map(|i| i * 977 % vocab as i64).collect();
    let run2 = |path: &Path| -> Vec<f32> {
        let mut s = quantbench::runtime::session(path, 1).unwrap();
        let out = s
            .run(ort::inputs! {
                "x" => Tensor::from_array((vec![rows as i64, k as i64], xs.clone())).unwrap(),
                "ids" => Tensor::from_array((vec![rows as i64], id.clone())).unwrap(),
            })
            .unwrap();
        out["y"].try_extract_tensor::<f32>().unwrap().1.to_vec()
    };
    let fp = run2(&src.path().join("m.onnx"));
    let q = run2(&dst.path().join("m.onnx"));
    let argmax = |v: &[f32]| -> Vec<usize> {
        v.chunks(vocab)
            .map(|r| (0..vocab).max_by(|&i, &j| r[i].total_cmp(&r[j])).unwrap())
            .collect()
    };
    let (a, b) = (argmax(&fp), argmax(&q));
    assert_eq!(a, b);
    let range = fp.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (row, &best) in a.iter().enumerate() {
        let (exact, got) = (fp[row * vocab + best], q[row * vocab + best]);
        assert!(
            (exact - got).abs() <= 0.01 * range,
            "row {row}: rescored {got} vs {exact} (range {range})"
        );
    }
}
