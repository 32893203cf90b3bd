//! BLIP for the faces and as a workload: a built-in or a folder (the seed's three-graph layout) opened for
//! captioning and question answering; its series are the vision model alone, whole answers and whole
//! captions; its accuracy is VQA accuracy (per answer type) with caption exact match beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::variants::{open_arms, Opened};
use super::workload::{ArmInfo, EvalProgress, Evaluated, Sample, Workload};
use super::{Cancel, Context, Event, Stage, Task};
use crate::config::{MeasureConfig, ModelEntry, EASY_VQA_TEST};
use crate::data::easy_vqa;
use crate::data::image::load_rgb;
use crate::data::manifest::{load_captions, load_vqa, CaptionItem, VqaItem};
use crate::measure::stats::Stats;
use crate::measure::{caption, vqa};
use crate::models::blip::{builtin, BlipModel, BlipPipeline};
use crate::results::{
    Accuracy, CaptionEvalResult, CaptionItemResult, Evaluation, FailedItem, Kind, Metric,
    VqaEvalResult, VqaItemResult, WorstItem,
};

/// Worst items a row keeps.
const WORST: usize = 5;

/// Writes a built-in BLIP's FP32 folder into `out` (through a temp folder; an existing `out` is refused).
pub fn export_builtin(name: &str, out: &Path, sink: &mut dyn FnMut(Event)) -> Result<()> {
    builtin::export_builtin(name, out, &mut |m| sink(Event::Note(m.to_string())))?;
    sink(Event::Note(format!("export {name}: {}", out.display())));
    Ok(())
}

fn first(items_len: usize, limit: usize) -> usize {
    if limit > 0 {
        items_len.min(limit)
    } else {
        items_len
    }
}

/// An item's image; when it does not load, the item is recorded in `failed` (and `None` returned), unless
/// the run stops on errors.
fn image_or_failed(
    path: &Path,
    item: &str,
    stop_on_error: bool,
    failed: &mut Vec<FailedItem>,
) -> Result<Option<image::RgbImage>> {
    match load_rgb(path) {
        Ok(image) => Ok(Some(image)),
        Err(e) if !stop_on_error => {
            failed.push(FailedItem {
                item: item.to_string(),
                error: e.to_string(),
            });
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn answer_item(
    pipeline: &mut BlipPipeline,
    it: &VqaItem,
    image: &image::RgbImage,
) -> Result<(VqaItemResult, u32)> {
    let a = pipeline
        .answer(image, &it.question)
        .with_context(|| format!("{} ({})", it.image.display(), it.question))?;
    let accuracy = vqa::accuracy(&a.text, &it.answers);
    Ok((
        VqaItemResult {
            image: it.image_rel.clone(),
            question: it.question.clone(),
            answer: a.text,
            references: it.answers.clone(),
            answer_type: it.answer_type.clone(),
            accuracy,
            correct: accuracy >= 1.0,
            question_truncated: a.question_truncated,
            latency_ms: a.total.as_secs_f64() * 1e3,
        },
        generated(&a.tokens),
    ))
}

/// Tokens generated, without the [DEC] the decoder starts from.
fn generated(tokens: &[i64]) -> u32 {
    tokens.len().saturating_sub(1) as u32
}

fn vqa_result(model: &str, manifest: &Path, items: Vec<VqaItemResult>) -> VqaEvalResult {
    let mut score = vqa::VqaScore::default();
    for it in &items {
        score.add(it.answer_type.as_deref().unwrap_or("all"), it.accuracy);
    }
    let latencies: Vec<f64> = items.iter().map(|r| r.latency_ms).collect();
    VqaEvalResult {
        model: model.to_string(),
        manifest: manifest.display().to_string(),
        n: items.len(),
        accuracy: score.accuracy(),
        accuracy_by_type: score
            .by_type
            .keys()
            .filter_map(|t| Some((t.clone(), score.accuracy_of(t)?)))
            .collect(),
        latency_ms: Stats::of(&latencies).expect("manifests are never empty"),
        items,
    }
}

fn caption_item(
    pipeline: &mut BlipPipeline,
    it: &CaptionItem,
    image: &image::RgbImage,
) -> Result<CaptionItemResult> {
    let c = pipeline
        .caption(image)
        .with_context(|| it.image.display().to_string())?;
    Ok(CaptionItemResult {
        image: it.image_rel.clone(),
        exact_match: caption::exact_match(&c.text, &it.captions),
        token_f1: caption::token_f1(&c.text, &it.captions),
        caption: c.text,
        references: it.captions.clone(),
        latency_ms: c.total.as_secs_f64() * 1e3,
    })
}

fn caption_result(model: &str, manifest: &Path, out: Vec<CaptionItemResult>) -> CaptionEvalResult {
    let n = out.len().max(1) as f64;
    let latencies: Vec<f64> = out.iter().map(|r| r.latency_ms).collect();
    CaptionEvalResult {
        model: model.to_string(),
        manifest: manifest.display().to_string(),
        n: out.len(),
        exact_match: out.iter().filter(|r| r.exact_match).count() as f64 / n,
        token_f1: out.iter().map(|r| r.token_f1).sum::<f64>() / n,
        latency_ms: Stats::of(&latencies).expect("manifests are never empty"),
        items: out,
    }
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

/// Answers every question of a VQA manifest; accuracy overall and per answer type (`quantbench eval`).
pub fn evaluate_vqa(
    pipeline: &mut BlipPipeline,
    (model, variant): (&str, &str),
    manifest: &Path,
    limit: usize,
    shard: Option<crate::results::shard::ShardSpec>,
    sink: &mut dyn FnMut(Event),
) -> Result<VqaEvalResult> {
    let mut items = load_vqa(manifest)?;
    items.truncate(first(items.len(), limit));
    let items = super::whisper::select(items, shard);
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        out.push(answer_item(pipeline, it, &load_rgb(&it.image)?)?.0);
        progress((model, variant), i + 1, items.len(), sink);
    }
    Ok(vqa_result(model, manifest, out))
}

/// Captions every image of a caption manifest; exact match and token F1 (`quantbench eval`).
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
        out.push(caption_item(pipeline, it, &load_rgb(&it.image)?)?);
        progress((model, variant), i + 1, items.len(), sink);
    }
    Ok(caption_result(model, manifest, out))
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

/// A manifest named on the command line: a file, or easy-VQA's `easy-vqa:test` / `easy-vqa:train`
/// (prepared in the cache on first use).
pub fn dataset_manifest(
    spec: &Path,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<PathBuf> {
    let split = if spec == Path::new(EASY_VQA_TEST) {
        easy_vqa::Split::Test
    } else if spec == Path::new(crate::config::EASY_VQA_TRAIN) {
        easy_vqa::Split::Train
    } else {
        anyhow::ensure!(spec.is_file(), "{}: no such manifest", spec.display());
        return Ok(spec.to_path_buf());
    };
    Ok(easy_vqa::prepare(&ctx.cache, split, &mut |m| sink(Event::Note(m.to_string())))?.vqa)
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

pub struct BlipWorkload {
    name: String,
    arms: Vec<ArmInfo>,
    pipelines: Vec<Opened<BlipPipeline>>,
    /// Timed inputs: the first `latency_samples` questions (with their images) and caption images.
    questions: Vec<(image::RgbImage, String)>,
    caption_images: Vec<image::RgbImage>,
    vqa_manifest: PathBuf,
    caption_manifest: Option<PathBuf>,
    vqa_items: Vec<VqaItem>,
    caption_items: Vec<CaptionItem>,
    dataset_sha256: String,
    random_weights: bool,
    threads: usize,
    only_series: Vec<String>,
    stop_on_error: bool,
}

impl BlipWorkload {
    pub fn open(
        entry: &ModelEntry,
        measure: &MeasureConfig,
        ctx: &Context,
        sink: &mut dyn FnMut(Event),
    ) -> Result<Self> {
        let (vqa_manifest, caption_manifest) = manifests(entry, ctx, sink)?;
        let mut vqa_items = load_vqa(&vqa_manifest)?;
        let mut caption_items = match &caption_manifest {
            Some(c) => load_captions(c)?,
            None => Vec::new(),
        };
        // The timed inputs: the first `latency_samples` that load (the evaluation records those that do not).
        let n = entry.latency_samples.max(1);
        let mut unused = Vec::new();
        let stop = measure.stop_on_error;
        let mut questions: Vec<(image::RgbImage, String)> = Vec::new();
        for q in &vqa_items {
            if questions.len() == n {
                break;
            }
            if let Some(image) = image_or_failed(&q.image, &q.image_rel, stop, &mut unused)? {
                questions.push((image, q.question.clone()));
            }
        }
        let mut caption_images = Vec::new();
        for c in &caption_items {
            if caption_images.len() == n {
                break;
            }
            caption_images.extend(image_or_failed(&c.image, &c.image_rel, stop, &mut unused)?);
        }
        anyhow::ensure!(
            !questions.is_empty(),
            "{}: no image of the dataset could be loaded (first: {})",
            vqa_manifest.display(),
            unused.first().map_or("", |f| f.error.as_str())
        );
        vqa_items.truncate(first(vqa_items.len(), entry.limit));
        caption_items.truncate(first(caption_items.len(), entry.limit));
        let mut files: Vec<&Path> = vqa_items.iter().map(|i| i.image.as_path()).collect();
        files.extend(caption_items.iter().map(|i| i.image.as_path()));
        if let Some(c) = &caption_manifest {
            files.push(c);
        }
        let dataset_sha256 = crate::data::dataset_sha256(&vqa_manifest, files)?;
        let pipelines = open_arms(entry, ctx, sink, |dir, threads| {
            Ok(BlipPipeline::new(BlipModel::open(dir, threads)?))
        })?;
        let random_weights = pipelines[0].pipeline.model.config.random_weights;
        Ok(BlipWorkload {
            name: pipelines[0].model.name.clone(),
            arms: pipelines.iter().map(Opened::info).collect(),
            pipelines,
            questions,
            caption_images,
            vqa_manifest,
            caption_manifest,
            vqa_items,
            caption_items,
            dataset_sha256,
            random_weights,
            threads: ctx.threads,
            only_series: entry.only_series.clone(),
            stop_on_error: stop,
        })
    }
}

/// Wrong answers, worst first (lowest VQA accuracy, then manifest order).
fn worst(items: &[VqaItemResult]) -> Vec<WorstItem> {
    let mut wrong: Vec<&VqaItemResult> = items.iter().filter(|i| !i.correct).collect();
    wrong.sort_by(|a, b| a.accuracy.total_cmp(&b.accuracy));
    wrong
        .into_iter()
        .take(WORST)
        .map(|i| {
            let words = |s: &str| {
                s.split_whitespace()
                    .map(|w| (w.to_string(), false))
                    .collect()
            };
            let mut refs: Vec<String> = i.references.clone();
            refs.dedup();
            WorstItem {
                item: i.image.clone(),
                cost: format!(
                    "accuracy {:.0} %{}",
                    i.accuracy * 100.0,
                    i.answer_type
                        .as_deref()
                        .map_or(String::new(), |t| format!(" ({t})"))
                ),
                lines: vec![
                    ("q".into(), words(&i.question)),
                    ("ref".into(), words(&refs.join(" | "))),
                    (
                        "got".into(),
                        i.answer
                            .split_whitespace()
                            .map(|w| (w.to_string(), true))
                            .collect(),
                    ),
                ],
            }
        })
        .collect()
}

impl Workload for BlipWorkload {
    fn kind(&self) -> Kind {
        Kind::Blip
    }

    fn model(&self) -> &str {
        &self.name
    }

    fn arms(&self) -> &[ArmInfo] {
        &self.arms
    }

    fn series(&self) -> Vec<&'static str> {
        let mut s = vec!["vision", "vqa"];
        if !self.caption_images.is_empty() {
            s.push("caption");
        }
        s.retain(|x| self.only_series.is_empty() || self.only_series.iter().any(|o| o == x));
        s
    }

    fn rounds(&self, series: &str) -> usize {
        match series {
            "caption" => self.caption_images.len(),
            _ => self.questions.len(),
        }
    }

    fn sample(
        &mut self,
        arm: usize,
        series: &str,
        round: usize,
        _: &mut dyn FnMut(Event),
    ) -> Result<Sample> {
        let p = &mut self.pipelines[arm].pipeline;
        match series {
            "vision" => {
                let (image, _) = &self.questions[round % self.questions.len()];
                let took = p.vision(image)?;
                Ok(Sample {
                    ms: took.as_secs_f64() * 1e3,
                    tokens: None,
                })
            }
            "vqa" => {
                let (image, question) = &self.questions[round % self.questions.len()];
                let a = p.answer(image, question)?;
                Ok(Sample {
                    ms: a.total.as_secs_f64() * 1e3,
                    tokens: Some(generated(&a.tokens)),
                })
            }
            _ => {
                let image = &self.caption_images[round % self.caption_images.len()];
                let c = p.caption(image)?;
                Ok(Sample {
                    ms: c.total.as_secs_f64() * 1e3,
                    tokens: Some(generated(&c.tokens)),
                })
            }
        }
    }

    fn evaluate(
        &mut self,
        arm: usize,
        cancel: &Cancel,
        progress: EvalProgress,
    ) -> Result<Evaluated> {
        if self.random_weights {
            return Ok(Evaluated {
                accuracy: Accuracy::not_applicable(
                    Metric::VqaAccuracy,
                    "random weights (blip.json: random_weights): a model for speed only",
                ),
                worst: Vec::new(),
                evaluation: None,
                failed: Vec::new(),
                long_form: None,
            });
        }
        let p = &mut self.pipelines[arm].pipeline;
        let total = self.vqa_items.len() + self.caption_items.len();
        let mut answers = Vec::new();
        let mut failed = Vec::new();
        let mut sum = 0.0;
        for (i, it) in self.vqa_items.iter().enumerate() {
            cancel.check()?;
            let image = image_or_failed(&it.image, &it.image_rel, self.stop_on_error, &mut failed)?;
            if let Some(image) = image {
                let (r, _) = answer_item(p, it, &image)?;
                sum += r.accuracy;
                answers.push(r);
            }
            progress(i + 1, total, Some(sum / answers.len().max(1) as f64));
        }
        anyhow::ensure!(
            !answers.is_empty(),
            "{}: no question could be answered: no image loaded",
            self.vqa_manifest.display()
        );
        let vqa = vqa_result(&self.name, &self.vqa_manifest, answers);
        let mut captions = Vec::new();
        for (i, it) in self.caption_items.iter().enumerate() {
            cancel.check()?;
            let image = image_or_failed(&it.image, &it.image_rel, self.stop_on_error, &mut failed)?;
            if let Some(image) = image {
                captions.push(caption_item(p, it, &image)?);
            }
            progress(self.vqa_items.len() + i + 1, total, Some(vqa.accuracy));
        }
        let captions = self
            .caption_manifest
            .as_ref()
            .map(|m| caption_result(&self.name, m, captions));
        let mut secondary = BTreeMap::new();
        if let Some(c) = &captions {
            secondary.insert("caption_exact_match".to_string(), c.exact_match);
            secondary.insert("caption_token_f1".to_string(), c.token_f1);
        }
        Ok(Evaluated {
            accuracy: Accuracy {
                metric: Metric::VqaAccuracy,
                value: Some(vqa.accuracy),
                n: Some(vqa.n),
                by_type: vqa.accuracy_by_type.clone(),
                secondary,
                not_applicable: None,
            },
            worst: worst(&vqa.items),
            evaluation: Some(Evaluation::Vqa { vqa, captions }),
            failed,
            long_form: None,
        })
    }

    fn dataset(&self) -> (String, String) {
        (
            self.vqa_manifest.display().to_string(),
            self.dataset_sha256.clone(),
        )
    }

    fn setup(&self) -> BTreeMap<String, serde_json::Value> {
        [
            ("threads".to_string(), self.threads.into()),
            ("latency_questions".to_string(), self.questions.len().into()),
            (
                "latency_images".to_string(),
                self.caption_images.len().into(),
            ),
        ]
        .into()
    }
}
