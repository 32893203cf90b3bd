use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::{Event, Stage};
use crate::assets::Cache;
use crate::config::{Experiment, MeasureConfig};
use crate::data::{audio, manifest};
use crate::measure::normalizer::normalize;
use crate::measure::stats::Summary;
use crate::measure::wer::{char_counts, word_counts, EditCounts};
use crate::models::whisper::features::WINDOW_FRAMES;
use crate::models::whisper::{DecodeOptions, Pipeline, WhisperModel};
use crate::models::{resolve, ResolvedModel};
use crate::results::{
    EvalResult, ExperimentResult, ItemResult, LatencyResult, ModelResult, PartSize,
};

/// Where assets live, which ONNX Runtime to load, how many threads sessions use.
#[derive(Debug, Clone)]
pub struct Context {
    pub cache: Cache,
    pub ort_library: Option<PathBuf>,
    pub threads: usize,
}

impl Context {
    pub fn init_runtime(&self, sink: &mut dyn FnMut(Event)) -> Result<()> {
        let lib =
            crate::runtime::locate_library(self.ort_library.as_deref(), &self.cache, &mut |m| {
                sink(Event::Note(m.to_string()))
            })?;
        crate::runtime::init(&lib)?;
        Ok(())
    }
}

/// Resolves (fetching and converting on first use) and opens a Whisper model.
pub fn open_whisper(
    spec: &str,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<(Pipeline, ResolvedModel)> {
    ctx.init_runtime(sink)?;
    let resolved = resolve(spec, &ctx.cache, &mut |m| sink(Event::Note(m.to_string())))?;
    sink(Event::Progress {
        model: resolved.name.clone(),
        stage: Stage::Load,
        done: 0,
        total: 1,
    });
    let model = WhisperModel::open(&resolved.onnx_dir, ctx.threads)?;
    Ok((Pipeline::new(model, DecodeOptions::default()), resolved))
}

fn load_items(manifest_path: &Path, limit: usize) -> Result<Vec<manifest::SpeechItem>> {
    let mut items = manifest::load_speech(manifest_path)?;
    if limit > 0 {
        items.truncate(limit);
    }
    Ok(items)
}

struct Pass {
    items: Vec<ItemResult>,
    words: EditCounts,
    chars: EditCounts,
    total: Duration,
    in_ort: Duration,
}

/// Transcribes every item once; audio is decoded up front so latency covers the transcription only.
fn transcribe_pass(
    pipeline: &mut Pipeline,
    items: &[manifest::SpeechItem],
    clips: &[audio::Audio],
    model: &str,
    stage: Stage,
    sink: &mut dyn FnMut(Event),
) -> Result<Pass> {
    let mut pass = Pass {
        items: Vec::with_capacity(items.len()),
        words: EditCounts::default(),
        chars: EditCounts::default(),
        total: Duration::ZERO,
        in_ort: Duration::ZERO,
    };
    for (i, (item, clip)) in items.iter().zip(clips).enumerate() {
        let t = pipeline
            .transcribe(&clip.samples)
            .with_context(|| item.audio.display().to_string())?;
        let (r, h) = (normalize(&item.text), normalize(&t.text));
        let wc = word_counts(&r, &h);
        pass.words.add(&wc);
        pass.chars.add(&char_counts(&r, &h));
        pass.total += t.total;
        pass.in_ort += t.in_ort;
        let result = ItemResult {
            audio: item.audio_rel.clone(),
            reference: item.text.clone(),
            hypothesis: t.text,
            latency_ms: ms(t.total),
            word_errors: wc.errors(),
            reference_words: wc.reference_len,
        };
        if stage == Stage::Evaluate {
            sink(Event::Item {
                model: model.to_string(),
                index: i,
                item: result.clone(),
            });
        }
        pass.items.push(result);
        sink(Event::Progress {
            model: model.to_string(),
            stage,
            done: i + 1,
            total: items.len(),
        });
    }
    Ok(pass)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn decode_all(items: &[manifest::SpeechItem]) -> Result<Vec<audio::Audio>> {
    items
        .iter()
        .map(|it| audio::load_16k(&it.audio).map_err(Into::into))
        .collect()
}

/// WER/CER over a manifest plus per-item latency (one pass).
pub fn evaluate(
    pipeline: &mut Pipeline,
    model: &str,
    manifest_path: &Path,
    limit: usize,
    sink: &mut dyn FnMut(Event),
) -> Result<EvalResult> {
    let items = load_items(manifest_path, limit)?;
    let clips = decode_all(&items)?;
    let pass = transcribe_pass(pipeline, &items, &clips, model, Stage::Evaluate, sink)?;
    Ok(eval_result(model, manifest_path, pass))
}

fn eval_result(model: &str, manifest_path: &Path, pass: Pass) -> EvalResult {
    let lat: Vec<f64> = pass.items.iter().map(|i| i.latency_ms).collect();
    EvalResult {
        model: model.to_string(),
        manifest: manifest_path.display().to_string(),
        n: pass.items.len(),
        wer: pass.words.rate(),
        cer: pass.chars.rate(),
        word_counts: pass.words,
        char_counts: pass.chars,
        latency_ms: Summary::of(&lat).expect("manifests are never empty"),
        items: pass.items,
    }
}

fn series(
    warmup: usize,
    runs: usize,
    model: &str,
    stage: Stage,
    sink: &mut dyn FnMut(Event),
    mut f: impl FnMut() -> Result<()>,
) -> Result<Summary> {
    for _ in 0..warmup {
        f()?;
    }
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        f()?;
        samples.push(ms(t.elapsed()));
        sink(Event::Progress {
            model: model.to_string(),
            stage,
            done: i + 1,
            total: runs,
        });
    }
    Ok(Summary::of(&samples).expect("runs >= 1"))
}

/// Encoder call and decoder step series on the first clip; end-to-end passes over all clips.
/// Returns the latency result and the first end-to-end pass (which also gives the accuracy).
fn measure(
    pipeline: &mut Pipeline,
    model: &str,
    items: &[manifest::SpeechItem],
    clips: &[audio::Audio],
    cfg: &MeasureConfig,
    threads: usize,
    sink: &mut dyn FnMut(Event),
) -> Result<(LatencyResult, Pass)> {
    let window = pipeline.features(&clips[0].samples).window(0);
    debug_assert_eq!(window.len() % WINDOW_FRAMES, 0);
    let mut scratch = Duration::ZERO;
    let encoder_ms = series(
        cfg.warmup,
        cfg.runs,
        model,
        Stage::MeasureEncoder,
        sink,
        || {
            pipeline.encode(&window, &mut scratch)?;
            Ok(())
        },
    )?;
    let (state, token) = pipeline.step_state(&window, cfg.decoder_cache_len)?;
    let decoder_step_ms = series(
        cfg.warmup,
        cfg.runs,
        model,
        Stage::MeasureDecoderStep,
        sink,
        || {
            pipeline.bench_step(&state, token, &mut scratch)?;
            Ok(())
        },
    )?;
    drop(state);

    // Warm the whole path once, then time every utterance in every pass.
    pipeline.transcribe(&clips[0].samples)?;
    let first = transcribe_pass(pipeline, items, clips, model, Stage::Evaluate, sink)?;
    let mut e2e: Vec<f64> = first.items.iter().map(|i| i.latency_ms).collect();
    let (mut total, mut in_ort) = (first.total, first.in_ort);
    for _ in 1..cfg.e2e_passes {
        let p = transcribe_pass(pipeline, items, clips, model, Stage::MeasureEndToEnd, sink)?;
        e2e.extend(p.items.iter().map(|i| i.latency_ms));
        total += p.total;
        in_ort += p.in_ort;
    }
    let latency = LatencyResult {
        threads,
        warmup: cfg.warmup,
        encoder_ms,
        decoder_step_ms,
        decoder_cache_len: cfg.decoder_cache_len,
        end_to_end_ms: Summary::of(&e2e).expect("items >= 1"),
        e2e_passes: cfg.e2e_passes,
        outside_ort_share: 1.0 - in_ort.as_secs_f64() / total.as_secs_f64().max(1e-12),
    };
    Ok((latency, first))
}

/// sha256 over the manifest and, in order, every audio file it names.
pub fn dataset_sha256(manifest_path: &Path, items: &[manifest::SpeechItem]) -> Result<String> {
    let mut lines = vec![crate::fsutil::sha256_file(manifest_path)
        .with_context(|| manifest_path.display().to_string())?];
    for it in items {
        lines.push(
            crate::fsutil::sha256_file(&it.audio)
                .with_context(|| it.audio.display().to_string())?,
        );
    }
    Ok(crate::fsutil::sha256_bytes(lines.join("\n").as_bytes()))
}

fn part_sizes(dir: &Path) -> Result<Vec<PartSize>> {
    crate::models::whisper::model::graph_files(dir)
        .into_iter()
        .map(|f| {
            let p = dir.join(f);
            Ok(PartSize {
                part: f.trim_end_matches(".onnx").to_string(),
                bytes: std::fs::metadata(&p)
                    .with_context(|| p.display().to_string())?
                    .len(),
                sha256: crate::fsutil::sha256_file(&p).with_context(|| p.display().to_string())?,
            })
        })
        .collect()
}

pub fn run_experiment(
    exp: &Experiment,
    config_file: &Path,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<ExperimentResult> {
    let started = chrono::Utc::now();
    ctx.init_runtime(sink)?;
    let mut models = Vec::new();
    for entry in &exp.models {
        let items = load_items(&entry.dataset, entry.limit)?;
        let clips = decode_all(&items)?;
        let (mut pipeline, resolved) = open_whisper(&entry.model, ctx, sink)?;
        let (latency, first) = measure(
            &mut pipeline,
            &resolved.name,
            &items,
            &clips,
            &exp.measure,
            ctx.threads,
            sink,
        )?;
        let result = ModelResult {
            model: resolved.name.clone(),
            variant: "fp32".into(),
            source_sha256: resolved.source_sha256.clone(),
            dataset: entry.dataset.display().to_string(),
            dataset_sha256: dataset_sha256(&entry.dataset, &items)?,
            parts: part_sizes(&resolved.onnx_dir)?,
            accuracy: eval_result(&resolved.name, &entry.dataset, first),
            latency,
        };
        sink(Event::ModelDone(Box::new(result.clone())));
        models.push(result);
    }
    Ok(ExperimentResult {
        name: exp.name.clone(),
        started_utc: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        config_file: config_file.display().to_string(),
        environment: super::environment(ctx.threads),
        models,
    })
}
