//! BLIP models for the faces: a built-in or a folder (the seed's three-graph layout) opened for captioning
//! and question answering, evaluated on VQA and caption manifests, and compared FP32 vs INT8 in experiments.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::run::paired_speedup;
use super::variants::{open_blip_variant, Opened};
use super::{Context, Event, Stage, Task};
use crate::config::{MeasureConfig, ModelEntry, EASY_VQA_TEST};
use crate::data::easy_vqa;
use crate::data::image::load_rgb;
use crate::data::manifest::{load_captions, load_vqa};
use crate::measure::stats::Summary;
use crate::measure::{caption, vqa};
use crate::models::blip::{builtin, BlipModel, BlipPipeline};
use crate::results::{
    BlipComparison, BlipModelResult, CaptionEvalResult, CaptionItemResult, VqaEvalResult,
    VqaItemResult,
};

/// Writes a built-in BLIP's FP32 folder into `out` (through a temp folder; an existing `out` is refused).
pub fn export_builtin(name: &str, out: &Path, sink: &mut dyn FnMut(Event)) -> Result<()> {
    builtin::export_builtin(name, out, &mut |m| sink(Event::Note(m.to_string())))?;
    sink(Event::Note(format!("export {name}: {}", out.display())));
    Ok(())
}

fn progress(
    (model, variant): (&str, &str),
    done: usize,
    total: usize,
    sink: &mut dyn FnMut(Event),
) {
    sink(Event::Progress {
        task: Task::new(model, &[variant]),
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
    (model, variant): (&str, &str),
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
        progress((model, variant), i + 1, items.len(), sink);
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
    (model, variant): (&str, &str),
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
        progress((model, variant), i + 1, items.len(), sink);
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

/// The folder of a BLIP spec: a built-in's (written into the cache on first use) or the given folder.
pub fn blip_dir(spec: &str, ctx: &Context, sink: &mut dyn FnMut(Event)) -> Result<PathBuf> {
    if builtin::BUILTIN_BLIP.contains(&spec) {
        return builtin::ensure_builtin(spec, &ctx.cache, &mut |m| {
            sink(Event::Note(m.to_string()))
        });
    }
    let dir = Path::new(spec);
    anyhow::ensure!(
        dir.is_dir(),
        "unknown BLIP model `{spec}`: give a built-in name ({}) or a folder with vision_model.onnx, text_encoder.onnx, text_decoder_with_past.onnx, tokenizer.json and blip.json",
        builtin::BUILTIN_BLIP.join(", ")
    );
    Ok(dir.to_path_buf())
}

pub fn open_blip(spec: &str, ctx: &Context, sink: &mut dyn FnMut(Event)) -> Result<BlipPipeline> {
    ctx.init_runtime(sink)?;
    let dir = blip_dir(spec, ctx, sink)?;
    let model = BlipModel::open(&dir, ctx.threads).with_context(|| format!("BLIP model {spec}"))?;
    Ok(BlipPipeline::new(model))
}

/// Whether an experiment entry names a BLIP (a built-in BLIP or a folder in BLIP's layout).
pub fn is_blip(spec: &str) -> bool {
    builtin::BUILTIN_BLIP.contains(&spec)
        || Path::new(spec)
            .join(crate::models::blip::model::VISION_FILE)
            .is_file()
}

/// The VQA and caption manifests of an entry.
fn manifests(
    entry: &ModelEntry,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<(PathBuf, Option<PathBuf>)> {
    if entry.dataset == Path::new(EASY_VQA_TEST) {
        let split = easy_vqa::prepare(&ctx.cache, easy_vqa::Split::Test, &mut |m| {
            sink(Event::Note(m.to_string()))
        })?;
        return Ok((split.vqa, entry.captions.clone().or(Some(split.captions))));
    }
    Ok((entry.dataset.clone(), entry.captions.clone()))
}

fn latency_progress(
    model: &str,
    arms: &[Opened<BlipPipeline>],
    done: usize,
    total: usize,
    sink: &mut dyn FnMut(Event),
) {
    let variants: Vec<&str> = arms.iter().map(|a| a.variant.as_str()).collect();
    sink(Event::Progress {
        task: Task::new(model, &variants),
        stage: Stage::MeasureEndToEnd,
        done,
        total,
    });
}

/// Every variant of a BLIP entry: sizes, then answer and caption latency interleaved across the
/// variants (A B A B …, as for Whisper), then accuracy on the whole manifests (`limit` items).
pub fn run_blip_entry(
    entry: &ModelEntry,
    measure: &MeasureConfig,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<Vec<BlipModelResult>> {
    let (vqa_manifest, caption_manifest) = manifests(entry, ctx, sink)?;
    let questions = load_vqa(&vqa_manifest)?;
    let captions = match &caption_manifest {
        Some(c) => load_captions(c)?,
        None => Vec::new(),
    };
    let n = entry.latency_samples.max(1);
    let vqa_samples: Vec<(image::RgbImage, String)> = questions
        .iter()
        .take(n)
        .map(|q| Ok((load_rgb(&q.image)?, q.question.clone())))
        .collect::<Result<_>>()?;
    // Captions are timed on the caption manifest's images, else on the VQA images.
    let caption_images: Vec<image::RgbImage> = if captions.is_empty() {
        vqa_samples.iter().map(|(i, _)| i.clone()).collect()
    } else {
        captions
            .iter()
            .take(n)
            .map(|c| Ok(load_rgb(&c.image)?))
            .collect::<Result<_>>()?
    };
    let setup = entry.quant_setup();
    let mut arms = Vec::new();
    for variant in entry.variants() {
        arms.push(open_blip_variant(
            &entry.model,
            &variant,
            &setup,
            ctx,
            sink,
        )?);
    }
    let name = arms[0].model.name.clone();
    let random = builtin::has_random_weights(&entry.model);

    let total = vqa_samples.len() + caption_images.len();
    for _ in 0..measure.warmup {
        for arm in arms.iter_mut() {
            arm.pipeline.answer(&vqa_samples[0].0, &vqa_samples[0].1)?;
            arm.pipeline.caption(&caption_images[0])?;
        }
    }
    let mut vqa_runs = vec![Vec::new(); arms.len()];
    let mut caption_runs = vec![Vec::new(); arms.len()];
    for (i, (image, question)) in vqa_samples.iter().enumerate() {
        ctx.cancel.check()?;
        for (arm, runs) in arms.iter_mut().zip(&mut vqa_runs) {
            let a = arm.pipeline.answer(image, question)?;
            runs.push(a.total.as_secs_f64() * 1e3);
        }
        latency_progress(&name, &arms, i + 1, total, sink);
    }
    for (i, image) in caption_images.iter().enumerate() {
        ctx.cancel.check()?;
        for (arm, runs) in arms.iter_mut().zip(&mut caption_runs) {
            let c = arm.pipeline.caption(image)?;
            runs.push(c.total.as_secs_f64() * 1e3);
        }
        latency_progress(&name, &arms, vqa_samples.len() + i + 1, total, sink);
    }

    let mut accuracy = Vec::new();
    for arm in arms.iter_mut() {
        ctx.cancel.check()?;
        if random {
            accuracy.push((None, None));
            continue;
        }
        let label = (name.as_str(), arm.variant.as_str());
        let vqa = evaluate_vqa(&mut arm.pipeline, label, &vqa_manifest, entry.limit, sink)?;
        let caps = match &caption_manifest {
            Some(c) => Some(evaluate_captions(
                &mut arm.pipeline,
                label,
                c,
                entry.limit,
                sink,
            )?),
            None => None,
        };
        accuracy.push((Some(vqa), caps));
    }

    let bytes = |a: &Opened<BlipPipeline>| a.parts.iter().map(|p| p.bytes).sum::<u64>() as f64;
    let base = 0; // entry.variants() puts FP32 first
    let mut rows = Vec::new();
    for (i, arm) in arms.iter().enumerate() {
        let (vqa, caps) = accuracy[i].clone();
        let vs_fp32 = (i != base).then(|| {
            let drop = |f: &dyn Fn(usize) -> Option<f64>| Some((f(base)? - f(i)?) * 100.0);
            BlipComparison {
                vqa_speedup: paired_speedup(&vqa_runs[base], &vqa_runs[i]),
                caption_speedup: paired_speedup(&caption_runs[base], &caption_runs[i]),
                vqa_accuracy_drop_points: drop(&|k| accuracy[k].0.as_ref().map(|r| r.accuracy)),
                caption_exact_match_drop_points: drop(&|k| {
                    accuracy[k].1.as_ref().map(|r| r.exact_match)
                }),
                size_ratio: bytes(arm) / bytes(&arms[base]),
            }
        });
        let verdicts = vs_fp32
            .as_ref()
            .map(|c| c.verdicts(&entry.thresholds))
            .unwrap_or_default();
        let summary = match (&vqa, &vs_fp32) {
            (Some(v), Some(c)) => format!(
                "VQA accuracy {:.2} %, VQA {:.2}×, caption {:.2}×",
                v.accuracy * 100.0,
                c.vqa_speedup,
                c.caption_speedup
            ),
            (Some(v), None) => format!("VQA accuracy {:.2} %", v.accuracy * 100.0),
            (None, Some(c)) => format!(
                "VQA {:.2}×, caption {:.2}×",
                c.vqa_speedup, c.caption_speedup
            ),
            (None, None) => "measured".to_string(),
        };
        sink(Event::Note(format!("{name} {}: {summary}", arm.variant)));
        rows.push(BlipModelResult {
            model: name.clone(),
            variant: arm.variant.clone(),
            source_sha256: arm.model.source_sha256.clone(),
            parts: arm.parts.clone(),
            threads: ctx.threads,
            warmup: measure.warmup,
            vqa_latency_ms: Summary::of(&vqa_runs[i]).expect("samples >= 1"),
            caption_latency_ms: Summary::of(&caption_runs[i]).expect("samples >= 1"),
            vqa_runs_ms: vqa_runs[i].clone(),
            caption_runs_ms: caption_runs[i].clone(),
            latency_dataset: vqa_manifest.display().to_string(),
            accuracy_na: random.then(|| "n/a (random weights)".to_string()),
            vqa,
            captions: caps,
            quantization: arm.quantization.clone(),
            vs_fp32,
            verdicts,
        });
    }
    Ok(rows)
}
