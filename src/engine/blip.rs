//! BLIP models for the faces: a model folder (the seed's three-graph layout) opened for captioning and
//! question answering. Built-in BLIP models come with the exporter.

use std::path::Path;

use anyhow::{Context as _, Result};

use super::{Context, Event, Stage, Task};
use crate::data::image::load_rgb;
use crate::data::manifest::{load_captions, load_vqa};
use crate::measure::stats::Summary;
use crate::measure::{caption, vqa};
use crate::models::blip::{BlipModel, BlipPipeline};
use crate::results::{CaptionEvalResult, CaptionItemResult, VqaEvalResult, VqaItemResult};

/// Built-in BLIP models `quantbench export` writes.
pub const BUILTIN_BLIP: &[&str] = &["blip-base-shape", "blip-easyvqa"];

/// Writes a built-in BLIP's FP32 folder into `out` (through a temp folder; an existing `out` is refused).
pub fn export_builtin(name: &str, out: &Path, sink: &mut dyn FnMut(Event)) -> Result<()> {
    use crate::models::blip::export::{
        random_weights, write_folder, BlipDims, TextDims, VisionDims,
    };
    use crate::models::blip::{tokenizer, BlipConfig};
    match name {
        "blip-base-shape" => {}
        "blip-easyvqa" => anyhow::bail!("blip-easyvqa is not trained yet (see the BLIP issue)"),
        _ => anyhow::bail!(
            "unknown built-in BLIP `{name}` (built-in: {})",
            BUILTIN_BLIP.join(", ")
        ),
    }
    anyhow::ensure!(!out.exists(), "{}: already exists", out.display());
    let dims = BlipDims {
        vision: VisionDims::BASE,
        text: TextDims::BASE,
    };
    sink(Event::Note(format!(
        "export {name}: seeded random weights at blip-vqa-base's size ({} parameters) ...",
        dims.parameters()
            .iter()
            .map(|(_, d)| d.iter().product::<usize>())
            .sum::<usize>()
    )));
    let weights = random_weights(&dims.parameters(), 0);
    // Placeholder words fill the vocabulary: with random weights no word means anything.
    let words: Vec<String> = (0..dims.text.vocab - tokenizer::SPECIAL.len())
        .map(|i| format!("w{i}"))
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let tok = tokenizer::wordpiece(&words).map_err(anyhow::Error::msg)?;
    let config = BlipConfig {
        bos_token_id: 4,
        sep_token_id: 3,
        ..Default::default()
    };
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    let tmp = tempfile::Builder::new()
        .prefix(".export-")
        .tempdir_in(parent)
        .with_context(|| parent.display().to_string())?;
    write_folder(tmp.path(), &dims, &weights, &tok, &config)?;
    std::fs::rename(tmp.keep(), out).with_context(|| out.display().to_string())?;
    sink(Event::Note(format!("export {name}: {}", out.display())));
    Ok(())
}

fn progress(model: &str, done: usize, total: usize, sink: &mut dyn FnMut(Event)) {
    sink(Event::Progress {
        task: Task::new(model, &["fp32"]),
        stage: Stage::Evaluate,
        done,
        total,
    });
}

fn first(items_len: usize, limit: usize) -> usize {
    if limit > 0 {
        items_len.min(limit)
    } else {
        items_len
    }
}

/// Answers every question of a VQA manifest; accuracy overall and per answer type.
pub fn evaluate_vqa(
    pipeline: &mut BlipPipeline,
    model: &str,
    manifest: &Path,
    limit: usize,
    sink: &mut dyn FnMut(Event),
) -> Result<VqaEvalResult> {
    let mut items = load_vqa(manifest)?;
    items.truncate(first(items.len(), limit));
    let mut score = vqa::VqaScore::default();
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let image = load_rgb(&it.image)?;
        let a = pipeline
            .answer(&image, &it.question)
            .with_context(|| format!("{} ({})", it.image.display(), it.question))?;
        let accuracy = vqa::accuracy(&a.text, &it.answers);
        score.add(it.answer_type.as_deref().unwrap_or("all"), accuracy);
        out.push(VqaItemResult {
            image: it.image_rel.clone(),
            question: it.question.clone(),
            answer: a.text,
            references: it.answers.clone(),
            answer_type: it.answer_type.clone(),
            accuracy,
            correct: accuracy >= 1.0,
            question_truncated: a.question_truncated,
            latency_ms: a.total.as_secs_f64() * 1e3,
        });
        progress(model, i + 1, items.len(), sink);
    }
    let latencies: Vec<f64> = out.iter().map(|r| r.latency_ms).collect();
    Ok(VqaEvalResult {
        model: model.to_string(),
        manifest: manifest.display().to_string(),
        n: out.len(),
        accuracy: score.accuracy(),
        accuracy_by_type: score
            .by_type
            .keys()
            .filter_map(|t| Some((t.clone(), score.accuracy_of(t)?)))
            .collect(),
        latency_ms: Summary::of(&latencies).expect("manifests are never empty"),
        items: out,
    })
}

/// Captions every image of a caption manifest; exact match and token F1 against its captions.
pub fn evaluate_captions(
    pipeline: &mut BlipPipeline,
    model: &str,
    manifest: &Path,
    limit: usize,
    sink: &mut dyn FnMut(Event),
) -> Result<CaptionEvalResult> {
    let mut items = load_captions(manifest)?;
    items.truncate(first(items.len(), limit));
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let image = load_rgb(&it.image)?;
        let c = pipeline
            .caption(&image)
            .with_context(|| it.image.display().to_string())?;
        out.push(CaptionItemResult {
            image: it.image_rel.clone(),
            exact_match: caption::exact_match(&c.text, &it.captions),
            token_f1: caption::token_f1(&c.text, &it.captions),
            caption: c.text,
            references: it.captions.clone(),
            latency_ms: c.total.as_secs_f64() * 1e3,
        });
        progress(model, i + 1, items.len(), sink);
    }
    let n = out.len().max(1) as f64;
    let latencies: Vec<f64> = out.iter().map(|r| r.latency_ms).collect();
    Ok(CaptionEvalResult {
        model: model.to_string(),
        manifest: manifest.display().to_string(),
        n: out.len(),
        exact_match: out.iter().filter(|r| r.exact_match).count() as f64 / n,
        token_f1: out.iter().map(|r| r.token_f1).sum::<f64>() / n,
        latency_ms: Summary::of(&latencies).expect("manifests are never empty"),
        items: out,
    })
}

pub fn open_blip(spec: &str, ctx: &Context, sink: &mut dyn FnMut(Event)) -> Result<BlipPipeline> {
    ctx.init_runtime(sink)?;
    let dir = Path::new(spec);
    anyhow::ensure!(
        dir.is_dir(),
        "unknown BLIP model `{spec}`: give a folder with vision_model.onnx, text_encoder.onnx, text_decoder_with_past.onnx and tokenizer.json (built-in BLIP models are not available yet)"
    );
    let model = BlipModel::open(dir, ctx.threads).with_context(|| format!("BLIP model {spec}"))?;
    Ok(BlipPipeline::new(model))
}
