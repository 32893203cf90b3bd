//! Calibration from the pipeline itself: the float model, with the activations to quantize exposed as extra
//! outputs, transcribes the calibration clips (Whisper) or answers the calibration questions (BLIP); each
//! graph sees what it sees in use, the decoders the tokens the float model produces (as the seed collects
//! `decoder_calibration_data`). With SmoothQuant this runs twice: once to choose the smoothing factors,
//! once on the smoothed float model for the ranges.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _, Result};

use super::{Context, Event, Stage, Task};
use crate::data::{audio, manifest};
use crate::models::blip::{BlipModel, BlipPipeline};
use crate::models::whisper::{DecodeOptions, Pipeline, WhisperModel};
use crate::quant::calib::TensorStats;
use crate::quant::{instrument_folder, observe, smooth_folder, Calibration, QuantOptions};

/// Used when no calibration manifest is given and this file exists (relative to the working directory).
pub const DEFAULT_CALIBRATION: &str = "datasets/speech-calib/manifest.jsonl";

/// What calibration runs the model on.
#[derive(Debug, Clone)]
pub enum CalibrationItems {
    /// Audio files to transcribe.
    Speech(Vec<PathBuf>),
    /// Images and questions to answer.
    Vqa(Vec<(PathBuf, String)>),
}

/// The items calibration runs on: a seeded choice of `size` items from a manifest, and a hash that
/// identifies them (manifest, chosen files and questions in order, size, seed).
#[derive(Debug, Clone)]
pub struct CalibrationSet {
    pub manifest: PathBuf,
    pub items: CalibrationItems,
    pub sha256: String,
}

impl CalibrationSet {
    pub fn load(manifest_path: Option<&Path>, size: usize, seed: u64) -> Result<Self> {
        let path = match manifest_path {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_CALIBRATION).is_file() => PathBuf::from(DEFAULT_CALIBRATION),
            None => bail!(
                "the static recipe needs calibration audio: pass --calib MANIFEST (a speech JSONL manifest) or set `calibration` for the model in the experiment file ({DEFAULT_CALIBRATION} is not here)"
            ),
        };
        if size == 0 {
            bail!("{}: calibration size is 0", path.display());
        }
        let mut lines = vec![format!("size={size} seed={seed}")];
        let sha = |file: &Path| -> Result<String> {
            crate::fsutil::sha256_file(file).with_context(|| file.display().to_string())
        };
        let items = match manifest::kind_of(&path)? {
            manifest::ManifestKind::Speech => {
                let all = manifest::load_speech(&path)?;
                let clips: Vec<PathBuf> = choose(all.len(), size, seed)
                    .iter()
                    .map(|&i| all[i].audio.clone())
                    .collect();
                for c in &clips {
                    lines.push(sha(c)?);
                }
                CalibrationItems::Speech(clips)
            }
            manifest::ManifestKind::Vqa => {
                let all = manifest::load_vqa(&path)?;
                let chosen: Vec<(PathBuf, String)> = choose(all.len(), size, seed)
                    .iter()
                    .map(|&i| (all[i].image.clone(), all[i].question.clone()))
                    .collect();
                for (image, question) in &chosen {
                    lines.push(sha(image)?);
                    lines.push(question.clone());
                }
                CalibrationItems::Vqa(chosen)
            }
            manifest::ManifestKind::Captions => bail!(
                "{}: a caption manifest; calibration needs speech or VQA items",
                path.display()
            ),
        };
        Ok(CalibrationSet {
            manifest: path,
            items,
            sha256: crate::fsutil::sha256_bytes(lines.join("\n").as_bytes()),
        })
    }

    pub fn len(&self) -> usize {
        match &self.items {
            CalibrationItems::Speech(v) => v.len(),
            CalibrationItems::Vqa(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `size` distinct indices below `n` (all of them when `size >= n`), by a seeded Fisher–Yates shuffle,
/// returned in manifest order.
fn choose(n: usize, size: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = crate::rng::XorShift64::new(seed);
    for i in (1..n).rev() {
        idx.swap(i, rng.below(i + 1));
    }
    idx.truncate(size.min(n));
    idx.sort_unstable();
    idx
}

type Stats = BTreeMap<String, HashMap<String, TensorStats>>;

/// Runs the instrumented float model in `dir` over the calibration clips and gathers statistics.
fn collect(
    dir: &Path,
    files: &[&str],
    options: &QuantOptions,
    set: &CalibrationSet,
    task: &Task,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<Stats> {
    let work = crate::fsutil::work_dir(dir.parent().unwrap_or(Path::new(".")), "calibrate")
        .context("cannot create a calibration folder")?;
    let observed = instrument_folder(dir, work.path(), files, &options.ignored)?;
    let stats: Arc<Mutex<Stats>> = Arc::new(Mutex::new(
        observed
            .iter()
            .map(|(file, acts)| {
                let per = acts
                    .iter()
                    .map(|(a, k)| (a.clone(), TensorStats::new(*k)))
                    .collect();
                (file.clone(), per)
            })
            .collect(),
    ));
    copy_other_graphs(dir, work.path(), files)?;
    let sink_stats = Arc::clone(&stats);
    let observer = Box::new(move |file: &str, outputs: &ort::session::SessionOutputs| {
        let mut all = sink_stats
            .lock()
            .map_err(|_| "statistics lock poisoned".to_string())?;
        let Some(per) = all.get_mut(file) else {
            return Ok(());
        };
        for (name, value) in outputs.iter() {
            let Some(act) = name.strip_prefix(observe::PREFIX) else {
                continue;
            };
            let (_, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| format!("`{act}`: {e}"))?;
            if let Some(s) = per.get_mut(act) {
                s.observe(data).map_err(|e| format!("`{act}`: {e}"))?;
            }
        }
        Ok(())
    });
    run_observed(
        work.path(),
        &set.items,
        observer,
        task,
        Stage::Calibrate,
        ctx,
        sink,
    )?;
    let stats = Arc::try_unwrap(stats)
        .map_err(|_| anyhow::anyhow!("calibration statistics still shared"))?
        .into_inner()
        .map_err(|_| anyhow::anyhow!("calibration statistics lock poisoned"))?;
    for (file, per) in &stats {
        if let Some((act, _)) = per.iter().find(|(_, s)| s.count == 0) {
            sink(Event::Warning(format!(
                "calibration: `{act}` in {file} never ran on the calibration set; its MatMuls stay float"
            )));
        }
    }
    Ok(stats
        .into_iter()
        .map(|(f, per)| (f, per.into_iter().filter(|(_, s)| s.count > 0).collect()))
        .collect())
}

/// Runs the model in `dir` (graphs with extra outputs) over `items`, handing every graph call's outputs
/// to `observer`: transcribing each clip (Whisper) or answering each question (BLIP).
pub fn run_observed(
    dir: &Path,
    items: &CalibrationItems,
    observer: crate::models::Observer,
    task: &Task,
    stage: Stage,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<()> {
    let total = match items {
        CalibrationItems::Speech(v) => v.len(),
        CalibrationItems::Vqa(v) => v.len(),
    };
    let mut step = |i: usize| -> Result<()> {
        ctx.cancel.check()?;
        sink(Event::Progress {
            task: task.clone(),
            stage,
            done: i,
            total,
        });
        Ok(())
    };
    match items {
        CalibrationItems::Speech(clips) => {
            let model = WhisperModel::open(dir, ctx.threads)
                .context("the instrumented model does not load")?;
            let mut pipeline = Pipeline::new(model, DecodeOptions::default());
            pipeline.observer = Some(observer);
            for (i, clip) in clips.iter().enumerate() {
                step(i)?;
                let audio = audio::load_16k_within(clip, &ctx.audio_limits)?;
                pipeline
                    .transcribe(&audio.samples)
                    .with_context(|| clip.display().to_string())?;
            }
        }
        CalibrationItems::Vqa(questions) => {
            let model = BlipModel::open(dir, ctx.threads)
                .context("the instrumented model does not load")?;
            let mut pipeline = BlipPipeline::new(model);
            pipeline.observer = Some(observer);
            for (i, (image, question)) in questions.iter().enumerate() {
                step(i)?;
                let rgb = crate::data::image::load_rgb(image)?;
                pipeline
                    .answer(&rgb, question)
                    .with_context(|| format!("{} ({question})", image.display()))?;
            }
        }
    }
    step(total)
}

/// Copies the graphs of `src` not in `files` (parts another recipe handles, which still have to run).
pub fn copy_other_graphs(src: &Path, dst: &Path, files: &[&str]) -> Result<()> {
    for file in crate::models::graph_files(src) {
        if !files.contains(&file) {
            std::fs::copy(src.join(file), dst.join(file))
                .with_context(|| src.join(file).display().to_string())?;
        }
    }
    Ok(())
}

/// Calibrates the float folder `fp32_dir`. Returns the folder to quantize (the float model itself, or its
/// smoothed copy inside `work`) and the statistics taken on it.
pub fn calibrate(
    fp32_dir: &Path,
    options: &QuantOptions,
    set: &CalibrationSet,
    work: &Path,
    task: &Task,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<(PathBuf, Calibration)> {
    let start = std::time::Instant::now();
    // Only the graphs the recipe quantizes statically are calibrated.
    let files: Vec<&str> = crate::models::graph_files(fp32_dir)
        .into_iter()
        .filter(|f| options.recipe_for(f) == crate::quant::Recipe::Static)
        .collect();
    let files = files.as_slice();
    sink(Event::Note(format!(
        "calibrate {task}: {} items from {}",
        set.len(),
        set.manifest.display()
    )));
    let first = collect(fp32_dir, files, options, set, task, ctx, sink)?;
    let (src, stats, smoothing) = match options.params.smooth_quant {
        None => (fp32_dir.to_path_buf(), first, BTreeMap::new()),
        Some(alpha) => {
            sink(Event::Progress {
                task: task.clone(),
                stage: Stage::Smooth,
                done: 0,
                total: 1,
            });
            let smoothed = work.join("smoothed");
            std::fs::create_dir_all(&smoothed).with_context(|| smoothed.display().to_string())?;
            let reports =
                smooth_folder(fp32_dir, &smoothed, files, &first, alpha, &options.ignored)?;
            copy_other_graphs(fp32_dir, &smoothed, files)?;
            sink(Event::Progress {
                task: task.clone(),
                stage: Stage::Smooth,
                done: 1,
                total: 1,
            });
            let second = collect(&smoothed, files, options, set, task, ctx, sink)?;
            (smoothed, second, reports)
        }
    };
    Ok((
        src,
        Calibration {
            stats,
            sha256: set.sha256.clone(),
            clips: set.len(),
            origin: Some(fp32_dir.to_path_buf()),
            seconds: start.elapsed().as_secs_f64(),
            smoothing,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn seeded_choice_is_stable_distinct_and_bounded() {
        let a = choose(100, 30, 0);
        assert_eq!(a, choose(100, 30, 0));
        assert_ne!(a, choose(100, 30, 1));
        assert_eq!(a.len(), 30);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[29] < 100);
        assert_eq!(choose(5, 30, 3), vec![0, 1, 2, 3, 4]);
    }
}
