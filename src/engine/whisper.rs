//! Whisper as a workload: the encoder call on a 30 s window, one decoder step over a warm cache, and whole
//! transcriptions of every clip; WER/CER on the entry's speech manifest.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use super::longform::{timed, LongFormSet};
use super::variants::{open_arms, Opened};
use super::workload::{ArmInfo, EvalProgress, Evaluated, Sample, Workload};
use super::{Cancel, Context, Event, Stage, Task};
use crate::config::{MeasureConfig, ModelEntry};
use crate::data::{audio, manifest};
use crate::measure::normalizer::normalize;
use crate::measure::stats::Stats;
use crate::measure::wer::{char_counts, word_counts, word_diff, EditCounts};
use crate::models::whisper::{DecodeOptions, Pipeline, StepState, WhisperModel};
use crate::results::shard::ShardSpec;
use crate::results::{
    Accuracy, EvalResult, Evaluation, FailedItem, ItemResult, Kind, Metric, WorstItem,
};

/// Worst items a row keeps.
const WORST: usize = 5;

fn load_items(manifest_path: &Path, limit: usize) -> Result<Vec<manifest::SpeechItem>> {
    let mut items = manifest::load_speech(manifest_path)?;
    if limit > 0 {
        items.truncate(limit);
    }
    Ok(items)
}

/// The items of `shard`, in dataset order (all of them without one).
pub(super) fn select<T>(items: Vec<T>, shard: Option<ShardSpec>) -> Vec<T> {
    match shard {
        None => items,
        Some(s) => items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| s.holds(*i))
            .map(|(_, it)| it)
            .collect(),
    }
}

fn decode_all(
    items: &[manifest::SpeechItem],
    limits: &audio::AudioLimits,
) -> Result<Vec<audio::Audio>> {
    items
        .iter()
        .map(|it| audio::load_16k_within(&it.audio, limits).map_err(Into::into))
        .collect()
}

/// One clip transcribed and scored against its reference once: its edits, the tokens it took, and its
/// time inside ONNX Runtime.
#[derive(Clone)]
struct Scored {
    item: ItemResult,
    words: EditCounts,
    chars: EditCounts,
    tokens: u32,
    in_ort: std::time::Duration,
}

fn transcribe(
    pipeline: &mut Pipeline,
    item: &manifest::SpeechItem,
    clip: &audio::Audio,
) -> Result<Scored> {
    let t = pipeline
        .transcribe(&clip.samples)
        .with_context(|| item.audio.display().to_string())?;
    let (r, h) = (normalize(&item.text), normalize(&t.text));
    let words = word_counts(&r, &h);
    let chars = char_counts(&r, &h);
    Ok(Scored {
        item: ItemResult {
            audio: item.audio_rel.clone(),
            reference: item.text.clone(),
            hypothesis: t.text,
            latency_ms: t.total.as_secs_f64() * 1e3,
            word_errors: words.errors(),
            reference_words: words.reference_len,
            char_errors: chars.errors(),
            reference_chars: chars.reference_len,
        },
        chars,
        words,
        tokens: t.tokens.len() as u32,
        in_ort: t.in_ort,
    })
}

/// Corpus WER/CER and latency over scored items.
fn eval_result(
    (model, variant): (&str, &str),
    manifest_path: &Path,
    scored: Vec<Scored>,
) -> EvalResult {
    let (mut words, mut chars) = (EditCounts::default(), EditCounts::default());
    for s in &scored {
        words.add(&s.words);
        chars.add(&s.chars);
    }
    let items: Vec<ItemResult> = scored.into_iter().map(|s| s.item).collect();
    let latencies: Vec<f64> = items.iter().map(|i| i.latency_ms).collect();
    EvalResult {
        model: model.to_string(),
        variant: variant.to_string(),
        manifest: manifest_path.display().to_string(),
        n: items.len(),
        wer: words.rate(),
        cer: chars.rate(),
        word_counts: words,
        char_counts: chars,
        latency_ms: Stats::of(&latencies).expect("manifests are never empty"),
        items,
    }
}

/// WER/CER over a manifest plus per-item latency (one pass): `quantbench eval` on speech.
pub fn evaluate(
    pipeline: &mut Pipeline,
    (model, variant): (&str, &str),
    manifest_path: &Path,
    limit: usize,
    shard: Option<ShardSpec>,
    limits: &audio::AudioLimits,
    sink: &mut dyn FnMut(Event),
) -> Result<EvalResult> {
    let items = select(load_items(manifest_path, limit)?, shard);
    let clips = decode_all(&items, limits)?;
    let mut out = Vec::new();
    for (i, (item, clip)) in items.iter().zip(&clips).enumerate() {
        out.push(transcribe(pipeline, item, clip)?);
        sink(Event::Progress {
            task: Task::new(model, &[variant]),
            stage: Stage::Evaluate,
            done: i + 1,
            total: items.len(),
        });
    }
    Ok(eval_result((model, variant), manifest_path, out))
}

/// The utterances with the most word errors, their differing words marked.
fn worst(items: &[ItemResult]) -> Vec<WorstItem> {
    let mut v: Vec<&ItemResult> = items.iter().filter(|i| i.word_errors > 0).collect();
    v.sort_by_key(|i| std::cmp::Reverse(i.word_errors));
    v.into_iter()
        .take(WORST)
        .map(|i| {
            let (r, h) = word_diff(&normalize(&i.reference), &normalize(&i.hypothesis));
            WorstItem {
                item: i.audio.clone(),
                cost: format!("{} of {} words wrong", i.word_errors, i.reference_words),
                lines: vec![("ref".into(), r), ("hyp".into(), h)],
            }
        })
        .collect()
}

pub struct WhisperWorkload {
    name: String,
    arms: Vec<ArmInfo>,
    pipelines: Vec<Opened<Pipeline>>,
    items: Vec<manifest::SpeechItem>,
    clips: Vec<audio::Audio>,
    /// The encoder's input: the first clip's first window.
    window: Vec<f32>,
    manifest: String,
    dataset_sha256: String,
    decoder_cache_len: usize,
    threads: usize,
    runs: usize,
    e2e_passes: usize,
    /// Per arm, the decoder state the step is timed on (while that series runs).
    states: Vec<(StepState, i64)>,
    /// Per arm, each clip's latest transcription (the evaluation reuses them: greedy decoding is
    /// deterministic).
    transcribed: Vec<Vec<Option<Scored>>>,
    /// Per arm, end-to-end time in all and inside ONNX Runtime calls (ms).
    e2e_time: Vec<(f64, f64)>,
    only_series: Vec<String>,
    /// Items whose audio did not decode, left out.
    failed: Vec<FailedItem>,
    /// The entry's long recordings, when it names some.
    long_form: Option<LongFormSet>,
}

impl WhisperWorkload {
    pub fn open(
        entry: &ModelEntry,
        measure: &MeasureConfig,
        ctx: &Context,
        sink: &mut dyn FnMut(Event),
    ) -> Result<Self> {
        let listed = load_items(&entry.dataset, entry.limit)?;
        let dataset_sha256 =
            crate::data::dataset_sha256(&entry.dataset, listed.iter().map(|i| i.audio.as_path()))?;
        let (mut items, mut clips, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        for item in listed {
            match audio::load_16k_within(&item.audio, &ctx.audio_limits) {
                Ok(clip) => {
                    clips.push(clip);
                    items.push(item);
                }
                Err(e) if !measure.stop_on_error => failed.push(FailedItem {
                    item: item.audio_rel.clone(),
                    error: e.to_string(),
                }),
                Err(e) => return Err(e.into()),
            }
        }
        if items.is_empty() {
            bail!(
                "{}: no item of the dataset could be used ({} failed; first: {})",
                entry.dataset.display(),
                failed.len(),
                failed.first().map_or("", |f| f.error.as_str())
            );
        }
        let language = entry.language.as_deref().unwrap_or("en");
        let pipelines = open_arms(entry, ctx, sink, |dir, threads| {
            let mut p = Pipeline::new(WhisperModel::open(dir, threads)?, DecodeOptions::default());
            p.set_language(language, entry.task)
                .map_err(|e| anyhow::anyhow!("{}: {e}", entry.model))?;
            Ok(p)
        })?;
        let long_form = entry
            .long_form
            .as_deref()
            .map(|f| {
                LongFormSet::open(
                    f,
                    entry.long_form_passes,
                    pipelines.len(),
                    &ctx.audio_limits,
                )
            })
            .transpose()?;
        let window = pipelines[0].pipeline.features(&clips[0].samples).window(0);
        let arms: Vec<ArmInfo> = pipelines.iter().map(Opened::info).collect();
        Ok(WhisperWorkload {
            name: pipelines[0].model.name.clone(),
            transcribed: vec![vec![None; items.len()]; arms.len()],
            e2e_time: vec![(0.0, 0.0); arms.len()],
            arms,
            pipelines,
            items,
            clips,
            window,
            manifest: entry.dataset.display().to_string(),
            dataset_sha256,
            decoder_cache_len: measure.decoder_cache_len,
            threads: ctx.threads,
            runs: measure.runs,
            e2e_passes: measure.e2e_passes,
            states: Vec::new(),
            only_series: entry.only_series.clone(),
            failed,
            long_form,
        })
    }
}

impl Workload for WhisperWorkload {
    fn kind(&self) -> Kind {
        Kind::Whisper
    }

    fn model(&self) -> &str {
        &self.name
    }

    fn arms(&self) -> &[ArmInfo] {
        &self.arms
    }

    fn series(&self) -> Vec<&'static str> {
        let long = self.long_form.is_some().then_some("long_form");
        ["encoder", "decoder_step", "end_to_end"]
            .into_iter()
            .chain(long)
            .filter(|s| self.only_series.is_empty() || self.only_series.iter().any(|o| o == s))
            .collect()
    }

    fn rounds(&self, series: &str) -> usize {
        match series {
            "end_to_end" => self.e2e_passes * self.items.len(),
            "long_form" => self.long_form.as_ref().map_or(0, LongFormSet::rounds),
            _ => self.runs,
        }
    }

    fn begin(&mut self, series: &str) -> Result<()> {
        if series == "decoder_step" {
            self.states = self
                .pipelines
                .iter_mut()
                .map(|p| p.pipeline.step_state(&self.window, self.decoder_cache_len))
                .collect::<Result<_, _>>()?;
        }
        Ok(())
    }

    fn warmup(&self, series: &str, configured: usize) -> usize {
        // A whole recording per arm warms the sessions up; more would only cost minutes.
        if series == "long_form" {
            configured.min(1)
        } else {
            configured
        }
    }

    fn measuring(&mut self, series: &str) {
        if let (Some(long), "long_form") = (self.long_form.as_mut(), series) {
            long.measuring();
        }
    }

    fn sample(
        &mut self,
        arm: usize,
        series: &str,
        round: usize,
        sink: &mut dyn FnMut(Event),
    ) -> Result<Sample> {
        let p = &mut self.pipelines[arm].pipeline;
        if let (Some(long), "long_form") = (self.long_form.as_mut(), series) {
            let (model, variant) = (&self.name, &self.arms[arm].variant);
            let (ms, tokens) = long.sample(p, arm, round, &mut |recording, segment| {
                sink(Event::Segment {
                    model: model.clone(),
                    variant: variant.clone(),
                    recording: recording.to_string(),
                    segment: timed(segment),
                })
            })?;
            return Ok(Sample {
                ms,
                tokens: Some(tokens),
            });
        }
        let mut in_ort = std::time::Duration::ZERO;
        let t = std::time::Instant::now();
        match series {
            "encoder" => {
                p.encode(&self.window, &mut in_ort)?;
            }
            "decoder_step" => {
                let (state, token) = &self.states[arm];
                p.bench_step(state, *token, &mut in_ort)?;
            }
            _ => {
                let i = round % self.items.len();
                let scored = transcribe(p, &self.items[i], &self.clips[i])?;
                let (ms, tokens, in_ort) = (scored.item.latency_ms, scored.tokens, scored.in_ort);
                let (total, ort) = &mut self.e2e_time[arm];
                *total += ms;
                *ort += in_ort.as_secs_f64() * 1e3;
                self.transcribed[arm][i] = Some(scored);
                return Ok(Sample {
                    ms,
                    tokens: Some(tokens),
                });
            }
        }
        Ok(Sample {
            ms: t.elapsed().as_secs_f64() * 1e3,
            tokens: None,
        })
    }

    fn end(&mut self, series: &str) {
        if series == "decoder_step" {
            self.states.clear();
        }
    }

    fn evaluate(
        &mut self,
        arm: usize,
        cancel: &Cancel,
        progress: EvalProgress,
    ) -> Result<Evaluated> {
        let mut out = Vec::new();
        let (mut errors, mut words) = (0usize, 0usize);
        for i in 0..self.items.len() {
            cancel.check()?;
            let scored = match self.transcribed[arm][i].take() {
                Some(scored) => scored,
                None => {
                    let p = &mut self.pipelines[arm].pipeline;
                    transcribe(p, &self.items[i], &self.clips[i])?
                }
            };
            errors += scored.item.word_errors;
            words += scored.item.reference_words;
            out.push(scored);
            progress(
                i + 1,
                self.items.len(),
                (words > 0).then(|| errors as f64 / words as f64),
            );
        }
        let variant = self.arms[arm].variant.clone();
        let result = eval_result((&self.name, &variant), Path::new(&self.manifest), out);
        let baseline = self.arms.iter().position(|a| a.baseline);
        let long_form = match self.long_form.as_mut() {
            Some(long) => {
                cancel.check()?;
                Some(long.outcome(&mut self.pipelines, arm, baseline)?)
            }
            None => None,
        };
        Ok(Evaluated {
            accuracy: Accuracy {
                metric: Metric::Wer,
                value: Some(result.wer),
                n: Some(result.n),
                by_type: BTreeMap::new(),
                secondary: [("cer".to_string(), result.cer)].into(),
                not_applicable: None,
            },
            worst: worst(&result.items),
            evaluation: Some(Evaluation::Speech(result)),
            failed: Vec::new(),
            long_form,
        })
    }

    fn failed_items(&self) -> Vec<FailedItem> {
        self.failed.clone()
    }

    fn dataset(&self) -> (String, String) {
        (self.manifest.clone(), self.dataset_sha256.clone())
    }

    fn arm_setup(&self, arm: usize) -> BTreeMap<String, serde_json::Value> {
        let (total, ort) = self.e2e_time[arm];
        let mut m = BTreeMap::new();
        if total > 0.0 {
            // Features, the decoding loop and the tokenizer: what INT8 kernels cannot speed up.
            m.insert(
                "end_to_end_outside_ort_share".to_string(),
                (1.0 - ort / total).into(),
            );
        }
        m
    }

    fn setup(&self) -> BTreeMap<String, serde_json::Value> {
        [
            ("threads".to_string(), self.threads.into()),
            (
                "decoder_cache_len".to_string(),
                self.decoder_cache_len.into(),
            ),
            ("e2e_passes".to_string(), self.e2e_passes.into()),
            ("clips".to_string(), self.items.len().into()),
        ]
        .into_iter()
        .chain(self.long_form.as_ref().map(|l| {
            (
                "long_form_recordings".to_string(),
                l.recording_count().into(),
            )
        }))
        .collect()
    }
}
