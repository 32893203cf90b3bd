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
                let images: Vec<&Path> = all.iter().map(|q| q.image.as_path()).collect();
                let chosen: Vec<(PathBuf, String)> =
                    choose_by_image(&images, size, QUESTIONS_PER_IMAGE, seed)
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
    let mut idx = choose_order(n, seed);
    idx.truncate(size.min(n));
    idx.sort_unstable();
    idx
}

/// Questions per image in a VQA calibration set. The vision model runs once per image, so 300 questions
/// cost 100 vision runs: the vision model sees as many images as NNCF's 100-question calibration of the
/// seed recipe, the text encoder all 300 questions.
pub const QUESTIONS_PER_IMAGE: usize = 3;

/// `size` distinct indices of items whose image is `images[i]`: images in a seeded order, up to `per_image`
/// questions of each (a seeded choice among its own), until `size` are chosen; in manifest order.
fn choose_by_image(images: &[&Path], size: usize, per_image: usize, seed: u64) -> Vec<usize> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut at: HashMap<&Path, usize> = HashMap::new();
    for (i, image) in images.iter().enumerate() {
        let g = *at.entry(image).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    let mut chosen = Vec::with_capacity(size.min(images.len()));
    for g in choose_order(groups.len(), seed) {
        if chosen.len() >= size {
            break;
        }
        let members = &groups[g];
        let take = per_image.min(size - chosen.len());
        chosen.extend(
            choose(members.len(), take, seed ^ (g as u64 + 1))
                .into_iter()
                .map(|m| members[m]),
        );
    }
    chosen.sort_unstable();
    chosen
}

/// A seeded permutation of 0..n.
fn choose_order(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = crate::rng::XorShift64::new(seed);
    for i in (1..n).rev() {
        idx.swap(i, rng.below(i + 1));
    }
    idx
}

type Stats = BTreeMap<String, HashMap<String, TensorStats>>;

/// Calibration runs in this many shards (items dealt round-robin), each with its own copy of the model on
/// its own thread, merged in shard order: a fixed number, so the statistics do not depend on the cores.
/// On 2 cores two single-threaded sessions get through Whisper's small decoder steps faster than one
/// two-threaded session does.
const CALIBRATION_SHARDS: usize = 2;

/// An observer adding every exposed activation of a graph call to `stats`.
fn statistics_observer(stats: Arc<Mutex<Stats>>) -> crate::models::Observer {
    Box::new(move |file: &str, outputs: &ort::session::SessionOutputs| {
        let mut all = stats
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
    })
}

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
    let observed = instrument_folder(dir, work.path(), files, options)?;
    copy_other_graphs(dir, work.path(), files)?;
    let shards: Vec<Arc<Mutex<Stats>>> = (0..CALIBRATION_SHARDS)
        .map(|_| {
            Arc::new(Mutex::new(
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
            ))
        })
        .collect();
    let observers = shards
        .iter()
        .map(|s| statistics_observer(Arc::clone(s)))
        .collect();
    let run = Observed {
        dir: work.path(),
        items: &set.items,
        decode: files.contains(&crate::models::blip::model::TEXT_DECODER_FILE),
    };
    run_observed(&run, observers, task, Stage::Calibrate, ctx, sink)?;
    let mut merged: Option<Stats> = None;
    for shard in shards {
        let shard = Arc::try_unwrap(shard)
            .map_err(|_| anyhow::anyhow!("calibration statistics still shared"))?
            .into_inner()
            .map_err(|_| anyhow::anyhow!("calibration statistics lock poisoned"))?;
        match merged.as_mut() {
            None => merged = Some(shard),
            Some(all) => {
                for (file, per) in shard {
                    let mine = all.entry(file.clone()).or_default();
                    for (act, st) in per {
                        match mine.get_mut(&act) {
                            Some(m) => m
                                .merge(&st)
                                .map_err(|e| anyhow::anyhow!("{file}: `{act}`: {e}"))?,
                            None => {
                                mine.insert(act, st);
                            }
                        }
                    }
                }
            }
        }
    }
    let stats = merged.unwrap_or_default();
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

/// What an observed run goes over.
pub struct Observed<'a> {
    /// The model folder, its graphs with extra outputs.
    pub dir: &'a Path,
    pub items: &'a CalibrationItems,
    /// Whether BLIP's answers are decoded (only needed when the decoder is observed).
    pub decode: bool,
}

/// Runs the model over the items, in as many shards as there are `observers`, handing every graph call's
/// outputs to its shard's observer: transcribing each clip (Whisper) or encoding each question against
/// its image (BLIP; one vision run per image).
pub fn run_observed(
    run: &Observed,
    observers: Vec<crate::models::Observer>,
    task: &Task,
    stage: Stage,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<()> {
    let total = match run.items {
        CalibrationItems::Speech(v) => v.len(),
        CalibrationItems::Vqa(v) => v.len(),
    };
    let shards = observers.len().max(1);
    let threads = (ctx.threads / shards).max(1);
    let progress = |done: usize| Event::Progress {
        task: task.clone(),
        stage,
        done,
        total,
    };
    sink(progress(0));
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let workers: Vec<_> = observers
            .into_iter()
            .enumerate()
            .map(|(k, observer)| {
                let tx = tx.clone();
                scope.spawn(move || run_shard(run, (k, shards), observer, threads, ctx, &tx))
            })
            .collect();
        drop(tx);
        let mut done = 0;
        for n in rx {
            done += n;
            sink(progress(done));
        }
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a calibration worker panicked")))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    Ok(())
}

/// Runs shard `k` of `shards` (every `shards`-th clip, or image with its questions) on its own copy of
/// the model; sends how many items each step finished.
fn run_shard(
    run: &Observed,
    (k, shards): (usize, usize),
    observer: crate::models::Observer,
    threads: usize,
    ctx: &Context,
    done: &std::sync::mpsc::Sender<usize>,
) -> Result<()> {
    match run.items {
        CalibrationItems::Speech(clips) => {
            let model = WhisperModel::open(run.dir, threads)
                .context("the instrumented model does not load")?;
            let mut pipeline = Pipeline::new(model, DecodeOptions::default());
            pipeline.observer = Some(observer);
            for clip in clips.iter().skip(k).step_by(shards) {
                ctx.cancel.check()?;
                let audio = audio::load_16k_within(clip, &ctx.audio_limits)?;
                pipeline
                    .transcribe(&audio.samples)
                    .with_context(|| clip.display().to_string())?;
                let _ = done.send(1);
            }
        }
        CalibrationItems::Vqa(questions) => {
            let model = BlipModel::open(run.dir, threads)
                .context("the instrumented model does not load")?;
            let mut pipeline = BlipPipeline::new(model);
            pipeline.observer = Some(observer);
            for (image, about) in by_image(questions).into_iter().skip(k).step_by(shards) {
                ctx.cancel.check()?;
                let rgb = crate::data::image::load_rgb(image)?;
                pipeline
                    .encode_questions(&rgb, &about, run.decode)
                    .with_context(|| format!("{} ({})", image.display(), about.join(" | ")))?;
                let _ = done.send(about.len());
            }
        }
    }
    Ok(())
}

/// Questions grouped by their image, images in order of first appearance, so each image's vision output
/// serves all its questions.
fn by_image(questions: &[(PathBuf, String)]) -> Vec<(&Path, Vec<&str>)> {
    let mut groups: Vec<(&Path, Vec<&str>)> = Vec::new();
    let mut at: HashMap<&Path, usize> = HashMap::new();
    for (image, question) in questions {
        let i = *at.entry(image.as_path()).or_insert_with(|| {
            groups.push((image.as_path(), Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(question.as_str());
    }
    groups
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
    use super::{by_image, choose, choose_by_image};
    use std::path::{Path, PathBuf};

    #[test]
    fn seeded_choice_is_stable_distinct_and_bounded() {
        let a = choose(100, 30, 0);
        assert_eq!(a, choose(100, 30, 0));
        assert_ne!(a, choose(100, 30, 1));
        assert_eq!(a.len(), 30);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[29] < 100);
        assert_eq!(choose(5, 30, 3), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn vqa_choice_takes_a_few_questions_from_each_image() {
        // 40 images with 5 questions each, interleaved as a manifest may list them.
        let names: Vec<PathBuf> = (0..40).map(|i| PathBuf::from(format!("{i}.png"))).collect();
        let images: Vec<&Path> = (0..200).map(|i| names[i % 40].as_path()).collect();
        let chosen = choose_by_image(&images, 30, 3, 7);
        assert_eq!(chosen, choose_by_image(&images, 30, 3, 7));
        assert_ne!(chosen, choose_by_image(&images, 30, 3, 8));
        assert_eq!(chosen.len(), 30);
        assert!(chosen.windows(2).all(|w| w[0] < w[1]));
        let mut per: std::collections::HashMap<&Path, usize> = Default::default();
        for &i in &chosen {
            *per.entry(images[i]).or_default() += 1;
        }
        assert_eq!(per.len(), 10, "{per:?}");
        assert!(per.values().all(|&n| n == 3));
        // Fewer questions than asked: all of them.
        assert_eq!(
            choose_by_image(&images[..7], 30, 3, 0),
            (0..7).collect::<Vec<_>>()
        );
        // An image with fewer questions than per_image gives what it has, and the next image the rest.
        let few: Vec<&Path> = vec![names[0].as_path(), names[1].as_path(), names[1].as_path()];
        assert_eq!(choose_by_image(&few, 2, 3, 0).len(), 2);
    }

    #[test]
    fn questions_are_grouped_by_image_in_order_of_first_appearance() {
        let q = |image: &str, text: &str| (PathBuf::from(image), text.to_string());
        let items = [
            q("a", "1"),
            q("b", "2"),
            q("a", "3"),
            q("c", "4"),
            q("b", "5"),
        ];
        let groups = by_image(&items);
        let view: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|(p, qs)| (p.to_str().unwrap(), qs.clone()))
            .collect();
        assert_eq!(
            view,
            [
                ("a", vec!["1", "3"]),
                ("b", vec!["2", "5"]),
                ("c", vec!["4"])
            ]
        );
    }
}
