//! blip-easyvqa, the BLIP the project trained (`just train-blip`), through the same pipeline as any BLIP:
//! it answers and captions held-out easy-VQA test images, and the seed's INT8 recipe keeps its answers.

mod common;

use quantbench::assets::Cache;
use quantbench::config::Variant;
use quantbench::data::easy_vqa::{prepare, Split};
use quantbench::data::image::load_rgb;
use quantbench::data::manifest::{load_captions, load_vqa};
use quantbench::engine::{open_blip_variant, QuantSetup};
use quantbench::models::blip::BlipPipeline;
use quantbench::quant::{QuantSummary, Recipe, StaticOverrides};

/// The first `n` test questions and the model's answers to them.
fn answers(p: &mut BlipPipeline, n: usize) -> (Vec<String>, Vec<String>) {
    let test = prepare(&Cache::new(None, None), Split::Test, &mut |_| {}).unwrap();
    let items = load_vqa(&test.vqa).unwrap();
    let mut want = Vec::new();
    let mut got = Vec::new();
    for q in items.iter().take(n) {
        let image = load_rgb(&q.image).unwrap();
        got.push(p.answer(&image, &q.question).unwrap().text);
        want.push(q.answers[0].clone());
    }
    (want, got)
}

#[test]
fn trained_model_answers_and_captions_held_out_images() {
    let ctx = common::context();
    let mut p = open_blip_variant(
        "blip-easyvqa",
        Variant::Fp32,
        &QuantSetup::default(),
        &ctx,
        &mut |_| {},
    )
    .unwrap()
    .pipeline;
    let (want, got) = answers(&mut p, 12);
    // A handful of held-out questions, by name: colour, shape and yes/no all answered.
    let right = want.iter().zip(&got).filter(|(w, g)| w == g).count();
    assert!(right >= 11, "answers {got:?}, expected {want:?}");

    let test = prepare(&Cache::new(None, None), Split::Test, &mut |_| {}).unwrap();
    let captions = load_captions(&test.captions).unwrap();
    let mut exact = 0;
    for c in captions.iter().take(8) {
        let text = p.caption(&load_rgb(&c.image).unwrap()).unwrap().text;
        exact += usize::from(c.captions.contains(&text));
    }
    assert!(exact >= 6, "{exact} of 8 captions exact");
}

#[test]
fn seed_recipe_splits_by_part_and_keeps_the_answers() {
    let ctx = common::context();
    // Only the calibration size is set: the rest are the seed recipe's own defaults (SmoothQuant α 0.5).
    let setup = QuantSetup {
        overrides: StaticOverrides {
            calibration_size: Some(100),
            ..Default::default()
        },
        ..Default::default()
    };
    let seed = Variant::Recipe(Recipe::Seed);
    let opened = open_blip_variant("blip-easyvqa", seed, &setup, &ctx, &mut |_| {}).unwrap();
    let sidecar: QuantSummary = serde_json::from_str(
        &std::fs::read_to_string(opened.onnx_dir.join("quantization.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sidecar.recipe, Recipe::Seed);
    assert_eq!(sidecar.calibration_clips, Some(100));
    let recipes: Vec<(String, Option<Recipe>)> = sidecar
        .parts
        .iter()
        .map(|p| (p.file.clone(), p.recipe))
        .collect();
    assert_eq!(
        recipes,
        vec![
            ("vision_model.onnx".into(), Some(Recipe::Static)),
            ("text_encoder.onnx".into(), Some(Recipe::Static)),
            ("text_decoder_with_past.onnx".into(), Some(Recipe::Weights)),
        ]
    );
    // SmoothQuant ran on the statically quantized parts only.
    assert!(sidecar.parts[0].smoothing.is_some() && sidecar.parts[1].smoothing.is_some());
    assert!(sidecar.parts[2].smoothing.is_none());
    // Weight-only: the decoder dequantizes weights and never quantizes an activation (no QuantizeLinear
    // node); the vision model, statically quantized, has both.
    let ops = |file: &str| {
        let bytes = std::fs::read(opened.onnx_dir.join(file)).unwrap();
        let (mut quantize, mut dequantize) = (0, 0);
        for i in 1..bytes.len().saturating_sub(13) {
            if &bytes[i..i + 13] == b"uantizeLinear" {
                match bytes[i - 1] {
                    b'Q' => quantize += 1,
                    b'q' if i >= 3 && &bytes[i - 3..i - 1] == b"De" => dequantize += 1,
                    _ => {}
                }
            }
        }
        (quantize, dequantize)
    };
    let (q, d) = ops("text_decoder_with_past.onnx");
    assert!(
        q == 0 && d > 0,
        "decoder: {q} QuantizeLinear, {d} DequantizeLinear"
    );
    let (q, d) = ops("vision_model.onnx");
    let activations_quantized = q > 0 && d > 0;
    assert!(
        activations_quantized,
        "the vision model is statically quantized"
    );

    let mut int8 = opened.pipeline;
    let mut fp32 = open_blip_variant("blip-easyvqa", Variant::Fp32, &setup, &ctx, &mut |_| {})
        .unwrap()
        .pipeline;
    let (_, a) = answers(&mut fp32, 60);
    let (_, b) = answers(&mut int8, 60);
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(same >= 57, "INT8 agrees with FP32 on {same} of 60 answers");
}

fn report(dir: &std::path::Path, model: &str) -> (String, quantbench::results::ExperimentResult) {
    let exp = dir.join("blip.toml");
    std::fs::write(
        &exp,
        format!(
            r#"name = "blip-small"
[measure]
warmup = 1
runs = 3
decoder_cache_len = 8
e2e_passes = 1
[[models]]
model = "{model}"
dataset = "easy-vqa:test"
limit = 40
latency_samples = 5
variants = ["seed"]
thresholds = {{ max_accuracy_drop_points = 100.0, min_speedup = {{ vision = 0.01 }} }}
[models.static]
calibration_size = 100
"#
        ),
    )
    .unwrap();
    let out = dir.join("reports");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .args(["report", "--config"])
        .arg(&exp)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let file = |ext: &str| {
        std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap()
    };
    let md = std::fs::read_to_string(file("md")).unwrap();
    let result = quantbench::results::ExperimentResult::from_json(
        &std::fs::read_to_string(file("json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        o.status.code(),
        Some(if result.failures().is_empty() { 0 } else { 3 }),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (md, result)
}

#[test]
fn report_compares_blip_variants_through_the_one_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (md, result) = report(dir.path(), "blip-easyvqa");
    assert!(md.contains("## blip-easyvqa (blip): FP32 vs INT8"), "{md}");
    assert!(md.contains("| seed |") && md.contains("| text_decoder_with_past |"));
    assert!(
        md.contains("`text_decoder_with_past.onnx` (weights)"),
        "{md}"
    );
    assert_eq!(result.schema, quantbench::results::SCHEMA);
    assert!(result.complete);
    let rows = &result.rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].variant.as_str(), rows[1].variant.as_str()),
        ("fp32", "seed")
    );
    let names: Vec<&str> = rows[0].series.keys().map(String::as_str).collect();
    assert_eq!(names, ["caption", "vision", "vqa"]);
    assert_eq!(rows[0].series["vqa"].stats.n, 5);
    assert_eq!(rows[0].series["vqa"].tokens.as_ref().map(Vec::len), Some(5));
    assert!(rows[0].series["vision"].tokens.is_none());
    assert_eq!(rows[0].accuracy.n, Some(40));
    assert!(rows[0].accuracy.by_type.contains_key("colour"));
    assert!(rows[0]
        .accuracy
        .secondary
        .contains_key("caption_exact_match"));
    let c = rows[1].vs_fp32.as_ref().unwrap();
    assert!(c.speedup["vqa"].median > 0.0 && c.size_ratio < 0.5);
    let checks: Vec<&str> = rows[1].verdicts.iter().map(|v| v.check.as_str()).collect();
    assert_eq!(checks, ["max_accuracy_drop_points", "min_speedup.vision"]);
    assert!(rows[1].verdicts.iter().all(|v| v.pass));
    assert!(rows[1].bytes() < rows[0].bytes());
    assert!(!rows[1].worst.iter().any(|w| w.item.is_empty()));
}

#[test]
fn random_weights_are_told_by_the_model_folder_not_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("my-random-blip");
    let src =
        quantbench::engine::blip_dir("blip-easyvqa", &common::context(), &mut |_| {}).unwrap();
    std::fs::create_dir(&model).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, model.join(p.file_name().unwrap())).unwrap();
    }
    let config = model.join("blip.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    json["random_weights"] = true.into();
    std::fs::write(&config, json.to_string()).unwrap();
    let (md, result) = report(dir.path(), &model.display().to_string());
    for r in &result.rows {
        let why = r.accuracy.not_applicable.as_deref().unwrap_or_default();
        assert!(
            r.accuracy.value.is_none() && why.contains("random weights"),
            "{why}"
        );
    }
    // The accuracy gate cannot be checked, so it fails; speed gates still apply.
    let v = &result.rows[1].verdicts;
    assert!(!v[0].pass && v[0].value.is_none() && v[1].pass);
    let seed_row = md.lines().find(|l| l.starts_with("| seed |")).unwrap();
    assert!(seed_row.contains("n/a (random weights"), "{seed_row}");
}

#[test]
fn any_part_takes_its_own_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mixed");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_quantbench"))
            .args(["quantize", "--model", "blip-easyvqa", "--recipe", "dynamic"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = run(&["--part", "vision_model=weights"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sidecar: QuantSummary =
        serde_json::from_str(&std::fs::read_to_string(out.join("quantization.json")).unwrap())
            .unwrap();
    let recipes: Vec<Option<Recipe>> = sidecar.parts.iter().map(|p| p.recipe).collect();
    assert_eq!(
        recipes,
        [
            Some(Recipe::Weights),
            Some(Recipe::Dynamic),
            Some(Recipe::Dynamic)
        ]
    );
    assert_eq!(sidecar.parameters["parts"]["vision_model"], "weights");

    std::fs::remove_dir_all(&out).unwrap();
    let o = run(&["--part", "vision=weights"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no graph `vision.onnx`"),
        "{err}"
    );
    let o = run(&["--part", "vision_model"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("expected PART=RECIPE"), "{err}");
    assert!(!out.exists());
}
