use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::variants::{open_variant, Opened, BASELINE};
use super::{Event, Stage, Task};
use crate::assets::Cache;
use crate::config::{Experiment, MeasureConfig};
use crate::data::{audio, manifest};
use crate::measure::normalizer::normalize;
use crate::measure::stats::Summary;
use crate::measure::wer::{char_counts, word_counts, EditCounts};
use crate::models::whisper::Pipeline;
use crate::results::{
    Comparison, EvalResult, ExperimentResult, ItemResult, LatencyResult, ModelResult, PartSize,
    Verdict,
};

/// Where assets live, which ONNX Runtime to load, how many threads sessions use, and the switch another
/// thread flips to stop a run.
#[derive(Debug, Clone)]
pub struct Context {
    pub cache: Cache,
    pub ort_library: Option<PathBuf>,
    pub threads: usize,
    pub cancel: Cancel,
}

/// Shared stop switch: a run checks it before every clip, latency run and quantization step.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

/// The error a run returns when it was stopped through its [`Cancel`].
#[derive(Debug, thiserror::Error)]
#[error("stopped")]
pub struct Cancelled;

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn check(&self) -> Result<(), Cancelled> {
        if self.0.load(Ordering::SeqCst) {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
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

fn load_items(manifest_path: &Path, limit: usize) -> Result<Vec<manifest::SpeechItem>> {
    let mut items = manifest::load_speech(manifest_path)?;
    if limit > 0 {
        items.truncate(limit);
    }
    Ok(items)
}

fn decode_all(items: &[manifest::SpeechItem]) -> Result<Vec<audio::Audio>> {
    items
        .iter()
        .map(|it| audio::load_16k(&it.audio).map_err(Into::into))
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Accuracy and timing of one pass over a dataset.
#[derive(Default)]
struct Pass {
    items: Vec<ItemResult>,
    words: EditCounts,
    chars: EditCounts,
    total: Duration,
    in_ort: Duration,
}

impl Pass {
    fn transcribe(
        &mut self,
        pipeline: &mut Pipeline,
        item: &manifest::SpeechItem,
        clip: &audio::Audio,
    ) -> Result<&ItemResult> {
        let t = pipeline
            .transcribe(&clip.samples)
            .with_context(|| item.audio.display().to_string())?;
        let (r, h) = (normalize(&item.text), normalize(&t.text));
        let wc = word_counts(&r, &h);
        self.words.add(&wc);
        self.chars.add(&char_counts(&r, &h));
        self.total += t.total;
        self.in_ort += t.in_ort;
        self.items.push(ItemResult {
            audio: item.audio_rel.clone(),
            reference: item.text.clone(),
            hypothesis: t.text,
            latency_ms: ms(t.total),
            word_errors: wc.errors(),
            reference_words: wc.reference_len,
        });
        Ok(self.items.last().expect("just pushed"))
    }

    fn eval_result(self, (model, variant): (&str, &str), manifest_path: &Path) -> EvalResult {
        let lat: Vec<f64> = self.items.iter().map(|i| i.latency_ms).collect();
        EvalResult {
            model: model.to_string(),
            variant: variant.to_string(),
            manifest: manifest_path.display().to_string(),
            n: self.items.len(),
            wer: self.words.rate(),
            cer: self.chars.rate(),
            word_counts: self.words,
            char_counts: self.chars,
            latency_ms: Summary::of(&lat).expect("manifests are never empty"),
            items: self.items,
        }
    }
}

/// WER/CER over a manifest plus per-item latency (one pass).
pub fn evaluate(
    pipeline: &mut Pipeline,
    (model, variant): (&str, &str),
    manifest_path: &Path,
    limit: usize,
    sink: &mut dyn FnMut(Event),
) -> Result<EvalResult> {
    let items = load_items(manifest_path, limit)?;
    let clips = decode_all(&items)?;
    let mut pass = Pass::default();
    for (i, (item, clip)) in items.iter().zip(&clips).enumerate() {
        let r = pass.transcribe(pipeline, item, clip)?.clone();
        sink(Event::Item {
            model: model.to_string(),
            variant: variant.to_string(),
            index: i,
            item: r,
        });
        sink(Event::Progress {
            task: Task::new(model, &[variant]),
            stage: Stage::Evaluate,
            done: i + 1,
            total: items.len(),
        });
    }
    Ok(pass.eval_result((model, variant), manifest_path))
}

/// One variant under measurement: its pipeline and the raw samples collected so far.
struct Arm {
    opened: Opened,
    encoder: Vec<f64>,
    step: Vec<f64>,
    e2e: Vec<f64>,
    first: Pass,
    total: Duration,
    in_ort: Duration,
}

fn timed(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(ms(t.elapsed()))
}

/// Encoder calls and decoder steps on the first clip, then end-to-end passes over every clip; every series
/// alternates between the variants.
fn measure(
    arms: &mut [Arm],
    items: &[manifest::SpeechItem],
    clips: &[audio::Audio],
    cfg: &MeasureConfig,
    cancel: &Cancel,
    sink: &mut dyn FnMut(Event),
) -> Result<()> {
    let window = arms[0]
        .opened
        .pipeline
        .features(&clips[0].samples)
        .window(0);
    let mut scratch = Duration::ZERO;
    // Every series alternates between the variants (A B A B …) so drift of a shared machine hits all alike.
    for _ in 0..cfg.warmup {
        for arm in arms.iter_mut() {
            arm.opened.pipeline.encode(&window, &mut scratch)?;
        }
    }
    for r in 0..cfg.runs {
        cancel.check()?;
        for arm in arms.iter_mut() {
            let t = timed(|| {
                arm.opened.pipeline.encode(&window, &mut scratch)?;
                Ok(())
            })?;
            arm.encoder.push(t);
        }
        progress(arms, Stage::MeasureEncoder, r + 1, cfg.runs, sink);
    }
    series_done(arms, Stage::MeasureEncoder, |a| &a.encoder, sink);

    let mut states = Vec::new();
    for arm in arms.iter_mut() {
        states.push(
            arm.opened
                .pipeline
                .step_state(&window, cfg.decoder_cache_len)?,
        );
    }
    for r in 0..(cfg.warmup + cfg.runs) {
        cancel.check()?;
        for (arm, (state, token)) in arms.iter_mut().zip(&states) {
            let t = timed(|| {
                arm.opened
                    .pipeline
                    .bench_step(state, *token, &mut scratch)?;
                Ok(())
            })?;
            if r >= cfg.warmup {
                arm.step.push(t);
            }
        }
        if r >= cfg.warmup {
            progress(
                arms,
                Stage::MeasureDecoderStep,
                r + 1 - cfg.warmup,
                cfg.runs,
                sink,
            );
        }
    }
    drop(states);
    series_done(arms, Stage::MeasureDecoderStep, |a| &a.step, sink);

    for arm in arms.iter_mut() {
        arm.opened.pipeline.transcribe(&clips[0].samples)?; // warm the whole path once
    }
    for pass in 0..cfg.e2e_passes {
        let stage = if pass == 0 {
            Stage::Evaluate
        } else {
            Stage::MeasureEndToEnd
        };
        for (i, (item, clip)) in items.iter().zip(clips).enumerate() {
            cancel.check()?;
            for arm in arms.iter_mut() {
                let mut p = Pass::default();
                let r = p.transcribe(&mut arm.opened.pipeline, item, clip)?.clone();
                arm.e2e.push(r.latency_ms);
                arm.total += p.total;
                arm.in_ort += p.in_ort;
                if pass == 0 {
                    sink(Event::Item {
                        model: arm.opened.model.name.clone(),
                        variant: arm.opened.variant.clone(),
                        index: i,
                        item: r,
                    });
                    arm.first.words.add(&p.words);
                    arm.first.chars.add(&p.chars);
                    arm.first.total += p.total;
                    arm.first.in_ort += p.in_ort;
                    arm.first.items.extend(p.items);
                }
            }
            progress(arms, stage, i + 1, items.len(), sink);
        }
    }
    Ok(())
}

fn progress(arms: &[Arm], stage: Stage, done: usize, total: usize, sink: &mut dyn FnMut(Event)) {
    let variants: Vec<&str> = arms.iter().map(|a| a.opened.variant.as_str()).collect();
    sink(Event::Progress {
        task: Task::new(&arms[0].opened.model.name, &variants),
        stage,
        done,
        total,
    });
}

/// Announces a finished latency series of every arm, with its speedup against the FP32 arm.
fn series_done(
    arms: &[Arm],
    stage: Stage,
    samples: impl Fn(&Arm) -> &[f64],
    sink: &mut dyn FnMut(Event),
) {
    let baseline = arms.iter().find(|a| a.opened.variant == BASELINE);
    for arm in arms {
        let Some(summary) = Summary::of(samples(arm)) else {
            continue;
        };
        sink(Event::Series {
            model: arm.opened.model.name.clone(),
            variant: arm.opened.variant.clone(),
            stage,
            summary,
            samples_ms: samples(arm).to_vec(),
            speedup: baseline
                .filter(|b| !std::ptr::eq(*b, arm))
                .map(|b| paired_speedup(samples(b), samples(arm))),
        });
    }
}

/// Median of the per-pair ratios baseline / variant (pairs = same run index, same utterance and pass).
pub(super) fn paired_speedup(baseline: &[f64], variant: &[f64]) -> f64 {
    let ratios: Vec<f64> = baseline.iter().zip(variant).map(|(b, v)| b / v).collect();
    Summary::of(&ratios).map_or(f64::NAN, |s| s.median)
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

pub fn run_experiment(
    exp: &Experiment,
    config_file: &Path,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<ExperimentResult> {
    let started = chrono::Utc::now();
    ctx.init_runtime(sink)?;
    let mut models = Vec::new();
    let mut blip = Vec::new();
    for entry in &exp.models {
        if super::blip::is_blip(&entry.model) {
            blip.extend(super::blip::run_blip_entry(entry, &exp.measure, ctx, sink)?);
            continue;
        }
        let items = load_items(&entry.dataset, entry.limit)?;
        let clips = decode_all(&items)?;
        let dataset_sha256 = dataset_sha256(&entry.dataset, &items)?;
        let mut arms = Vec::new();
        for variant in entry.variants() {
            arms.push(Arm {
                opened: open_variant(&entry.model, &variant, &entry.quant_setup(), ctx, sink)?,
                encoder: Vec::new(),
                step: Vec::new(),
                e2e: Vec::new(),
                first: Pass::default(),
                total: Duration::ZERO,
                in_ort: Duration::ZERO,
            });
        }
        measure(&mut arms, &items, &clips, &exp.measure, &ctx.cancel, sink)?;
        let parts: Vec<Vec<PartSize>> = arms.iter().map(|a| a.opened.parts.clone()).collect();
        let bytes = |p: &[PartSize]| p.iter().map(|x| x.bytes).sum::<u64>() as f64;
        let baseline = arms.iter().position(|a| a.opened.variant == BASELINE);
        let comparisons: Vec<Option<(Comparison, Vec<Verdict>)>> = (0..arms.len())
            .map(|i| {
                let b = baseline.filter(|&b| b != i)?;
                let (base, arm) = (&arms[b], &arms[i]);
                let wer = (base.first.words.rate(), arm.first.words.rate());
                let c = Comparison {
                    encoder_speedup: paired_speedup(&base.encoder, &arm.encoder),
                    decoder_step_speedup: paired_speedup(&base.step, &arm.step),
                    end_to_end_speedup: paired_speedup(&base.e2e, &arm.e2e),
                    wer_drop_points: (wer.1 - wer.0) * 100.0,
                    size_ratio: bytes(&parts[i]) / bytes(&parts[b]),
                };
                let verdicts = c.verdicts(&entry.thresholds, wer);
                Some((c, verdicts))
            })
            .collect();
        for ((arm, parts), compared) in arms.into_iter().zip(parts).zip(comparisons) {
            let (vs_fp32, verdicts) = match compared {
                Some((c, v)) => (Some(c), v),
                None => (None, Vec::new()),
            };
            let latency = LatencyResult {
                threads: ctx.threads,
                warmup: exp.measure.warmup,
                encoder_ms: Summary::of(&arm.encoder).expect("runs >= 1"),
                decoder_step_ms: Summary::of(&arm.step).expect("runs >= 1"),
                decoder_cache_len: exp.measure.decoder_cache_len,
                end_to_end_ms: Summary::of(&arm.e2e).expect("items >= 1"),
                e2e_passes: exp.measure.e2e_passes,
                outside_ort_share: 1.0
                    - arm.in_ort.as_secs_f64() / arm.total.as_secs_f64().max(1e-12),
                encoder_runs_ms: arm.encoder.clone(),
                decoder_step_runs_ms: arm.step.clone(),
                end_to_end_runs_ms: arm.e2e.clone(),
            };
            let row = ModelResult {
                model: arm.opened.model.name.clone(),
                variant: arm.opened.variant.clone(),
                source_sha256: arm.opened.model.source_sha256.clone(),
                dataset: entry.dataset.display().to_string(),
                dataset_sha256: dataset_sha256.clone(),
                parts,
                accuracy: arm.first.eval_result(
                    (&arm.opened.model.name, &arm.opened.variant),
                    &entry.dataset,
                ),
                latency,
                quantization: arm.opened.quantization,
                verdicts,
                vs_fp32,
            };
            sink(Event::ModelDone(Box::new(row.clone())));
            models.push(row);
        }
    }
    let mut result = experiment_result(exp, config_file, ctx.threads, started, models);
    result.blip = blip;
    Ok(result)
}

/// The outcome of `exp` from the rows measured since `started` (also what the TUI saves mid-session).
pub fn experiment_result(
    exp: &Experiment,
    config_file: &Path,
    threads: usize,
    started: chrono::DateTime<chrono::Utc>,
    models: Vec<ModelResult>,
) -> ExperimentResult {
    ExperimentResult {
        name: exp.name.clone(),
        started_utc: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        config_file: config_file.display().to_string(),
        environment: super::environment(threads),
        settings_changed: Vec::new(),
        models,
        blip: Vec::new(),
    }
}
