//! blip-easyvqa, the BLIP the project trained (`just train-blip`), through the same pipeline as any BLIP:
//! it answers and captions held-out easy-VQA test images, and the seed's INT8 recipe keeps its answers.

mod common;

use quantbench::assets::Cache;
use quantbench::data::easy_vqa::{prepare, Split};
use quantbench::data::image::load_rgb;
use quantbench::data::manifest::{load_captions, load_vqa};
use quantbench::engine::{open_blip_variant, QuantSetup};
use quantbench::models::blip::BlipPipeline;
use quantbench::quant::{QuantSummary, Recipe, StaticParams};

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
        "fp32",
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
    let setup = QuantSetup {
        params: StaticParams {
            calibration_size: 100,
            ..StaticParams::seed()
        },
        ..Default::default()
    };
    let opened = open_blip_variant("blip-easyvqa", "seed", &setup, &ctx, &mut |_| {}).unwrap();
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
    let mut fp32 = open_blip_variant("blip-easyvqa", "fp32", &setup, &ctx, &mut |_| {})
        .unwrap()
        .pipeline;
    let (_, a) = answers(&mut fp32, 60);
    let (_, b) = answers(&mut int8, 60);
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(same >= 57, "INT8 agrees with FP32 on {same} of 60 answers");
}

#[test]
fn report_compares_blip_variants_and_marks_random_weights() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("blip.toml");
    std::fs::write(
        &exp,
        r#"name = "blip-small"
[measure]
warmup = 1
runs = 3
decoder_cache_len = 8
e2e_passes = 1
[[models]]
model = "blip-easyvqa"
dataset = "easy-vqa:test"
limit = 40
latency_samples = 5
variants = ["seed"]
thresholds = { max_accuracy_drop_points = 100.0 }
[models.static]
calibration_size = 100
smooth_quant = { encoder = 0.5 }
"#,
    )
    .unwrap();
    let out = dir.path().join("reports");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .args(["report", "--config"])
        .arg(&exp)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let file = |ext: &str| {
        std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap()
    };
    let md = std::fs::read_to_string(file("md")).unwrap();
    assert!(md.contains("## blip-easyvqa: FP32 vs INT8 (BLIP)"), "{md}");
    assert!(md.contains("| seed |") && md.contains("| text_decoder_with_past |"));
    assert!(md.contains("text_decoder_with_past: weights"));
    let mut result: quantbench::results::ExperimentResult =
        serde_json::from_str(&std::fs::read_to_string(file("json")).unwrap()).unwrap();
    assert!(result.models.is_empty());
    let rows = &result.blip;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].variant.as_str(), rows[1].variant.as_str()),
        ("fp32", "seed")
    );
    assert_eq!(rows[0].vqa_runs_ms.len(), 5);
    assert_eq!(rows[0].vqa.as_ref().unwrap().n, 40);
    let c = rows[1].vs_fp32.as_ref().unwrap();
    assert!(c.vqa_speedup > 0.0 && c.size_ratio < 0.5);
    assert!(rows[1].verdicts.iter().all(|v| v.pass));
    let bytes =
        |r: &quantbench::results::BlipModelResult| -> u64 { r.parts.iter().map(|p| p.bytes).sum() };
    assert!(bytes(&rows[1]) < bytes(&rows[0]));

    // A model with random weights shows why it has no accuracy, never a number.
    for r in &mut result.blip {
        r.accuracy_na = Some("n/a (random weights)".into());
        r.vqa = None;
        r.captions = None;
        if let Some(c) = r.vs_fp32.as_mut() {
            c.vqa_accuracy_drop_points = None;
            c.caption_exact_match_drop_points = None;
        }
    }
    use quantbench::report::Exporter;
    let md = quantbench::report::Markdown.render(&result);
    let seed_row = md.lines().find(|l| l.starts_with("| seed |")).unwrap();
    assert!(
        seed_row.contains("| n/a (random weights) | n/a |"),
        "{seed_row}"
    );
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
