//! Quantization with accuracy control: the fastest INT8 model whose drop on a validation set stays within a
//! budget. Calibrate once; rank the ops by their isolated sensitivity (`quant::sensitivity`); validate
//! FP32 once and then every model the search tries, through the model's own workload (WER for Whisper, VQA
//! accuracy for BLIP); measure every model of the trajectory through the one interleaved loop; publish the
//! chosen one whole with its record.

mod search;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use super::calibrate::{calibrate, copy_other_graphs, run_observed, CalibrationItems, Observed};
use super::variants::{read_control, read_sidecar, QuantSetup};
use super::workload::Workload;
use super::{Context, Event, Stage, Task};
use crate::config::{MeasureConfig, ModelEntry};
use crate::data::manifest;
use crate::models::{resolve, ResolvedModel};
use crate::quant::sensitivity::{self, OpError, OpSensitivity, ShadowPair};
use crate::quant::{observe, quantize_folder, Calibration, QuantOptions, QuantSummary, Recipe};
use crate::results::control::{
    AccuracyControl, Budget, ControlOp, ControlStep, StepAction, ValidationSet, SIDECAR_FILE,
};

pub use search::Limits;

/// Latency samples per series for the trajectory's models (BLIP questions; Whisper uses `measure.runs`).
const TRAJECTORY_SAMPLES: usize = 20;

/// Trajectory models measured together (with FP32) in one interleaved run.
const TRAJECTORY_BATCH: usize = 3;

/// What to search for.
#[derive(Debug, Clone)]
pub struct Request {
    /// Built-in name or model folder.
    pub model: String,
    pub recipe: Recipe,
    pub setup: QuantSetup,
    pub budget: Budget,
    /// Validation manifest (speech or VQA), or `easy-vqa:train`.
    pub validate: PathBuf,
    /// The first N validation items (0 = all).
    pub validate_size: usize,
    pub limits: Limits,
    pub measure: MeasureConfig,
}

impl Request {
    /// What an experiment entry's `[models.accuracy_control]` asks for.
    pub fn of_entry(
        entry: &ModelEntry,
        ac: &crate::config::AccuracyControlConfig,
        measure: &MeasureConfig,
    ) -> Self {
        Request {
            model: entry.model.clone(),
            recipe: ac.recipe,
            setup: QuantSetup::of_entry(entry),
            budget: Budget {
                max_drop: ac.max_drop,
                drop_type: ac.drop_type,
            },
            validate: ac.validate.clone(),
            validate_size: ac.validate_size,
            limits: Limits {
                max_reverts: ac.max_reverts,
                max_seconds: ac.max_seconds,
            },
            measure: measure.clone(),
        }
    }
}

/// The chosen model's folder, its quantization sidecar and the search's record.
pub struct Outcome {
    pub dir: PathBuf,
    pub summary: QuantSummary,
    pub record: AccuracyControl,
}

/// The per-op ranking alone.
pub struct Ranked {
    pub ops: Vec<OpSensitivity>,
    pub validation: ValidationSet,
    pub method: &'static str,
}

/// A validation manifest by path, or easy-VQA's training split prepared in the cache.
fn validation_manifest(spec: &Path, ctx: &Context, sink: &mut dyn FnMut(Event)) -> Result<PathBuf> {
    super::blip::dataset_manifest(spec, ctx, sink)
        .with_context(|| format!("validation set {}", spec.display()))
}

/// The validation items the ranking runs the model on: the first `size` of the manifest (0 = all).
fn ranking_items(manifest_path: &Path, size: usize) -> Result<CalibrationItems> {
    let n = if size == 0 { usize::MAX } else { size };
    Ok(match manifest::kind_of(manifest_path)? {
        manifest::ManifestKind::Speech => {
            let all = manifest::load_speech(manifest_path)?;
            CalibrationItems::Speech(all.into_iter().take(n).map(|i| i.audio).collect())
        }
        manifest::ManifestKind::Vqa => {
            let all = manifest::load_vqa(manifest_path)?;
            CalibrationItems::Vqa(
                all.into_iter()
                    .take(n)
                    .map(|i| (i.image, i.question))
                    .collect(),
            )
        }
        manifest::ManifestKind::Captions => bail!(
            "{}: a caption manifest; validation needs speech or VQA items",
            manifest_path.display()
        ),
    })
}

/// What every step shares: the float folder quantized from (smoothed when the recipe smooths), its
/// calibration, the options, and the validation entry.
struct Prepared {
    fp32: ResolvedModel,
    options: QuantOptions,
    src: PathBuf,
    calibration: Option<Calibration>,
    files: Vec<&'static str>,
    validation: PathBuf,
    work: tempfile::TempDir,
}

fn prepare(req: &Request, ctx: &Context, sink: &mut dyn FnMut(Event)) -> Result<Prepared> {
    ctx.init_runtime(sink)?;
    let fp32 = resolve(&req.model, &ctx.cache, &mut |m| {
        sink(Event::Note(m.to_string()))
    })?;
    let validation = validation_manifest(&req.validate, ctx, sink)?;
    let options = req.setup.options(req.recipe);
    let set = req.setup.calibration_set(req.recipe, &fp32, ctx, sink)?;
    let root = ctx.cache.root.join("quantized");
    std::fs::create_dir_all(&root).with_context(|| root.display().to_string())?;
    let work =
        crate::fsutil::work_dir(&root, "control").with_context(|| root.display().to_string())?;
    let task = Task::new(&fp32.name, &[req.recipe.name()]);
    let (src, calibration) = match &set {
        Some(set) => {
            let (src, c) = calibrate(&fp32.onnx_dir, &options, set, work.path(), &task, ctx, sink)?;
            (src, Some(c))
        }
        None => (fp32.onnx_dir.clone(), None),
    };
    let files = crate::models::graph_files(&fp32.onnx_dir);
    Ok(Prepared {
        fp32,
        options,
        src,
        calibration,
        files,
        validation,
        work,
    })
}

/// Ranks the ops: the shadow graphs run over the validation items, errors summed per op.
fn rank(
    p: &Prepared,
    size: usize,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<Vec<OpSensitivity>> {
    let dir = p.work.path().join("shadow");
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let pairs =
        sensitivity::shadow_folder(&p.src, &dir, &p.files, &p.options, p.calibration.as_ref())?;
    copy_other_graphs(&p.src, &dir, &p.files)?;
    let lookup: HashMap<String, Vec<ShadowPair>> =
        pairs.iter().map(|(f, v)| (f.clone(), v.clone())).collect();
    let errors: Arc<Mutex<BTreeMap<(String, String), OpError>>> = Arc::default();
    let sink_errors = Arc::clone(&errors);
    let observer = Box::new(move |file: &str, outputs: &ort::session::SessionOutputs| {
        let Some(list) = lookup.get(file) else {
            return Ok(());
        };
        let mut values: HashMap<String, Vec<f32>> = HashMap::new();
        for (name, value) in outputs.iter() {
            if let Some(t) = name.strip_prefix(observe::PREFIX) {
                let (_, data) = value
                    .try_extract_tensor::<f32>()
                    .map_err(|e| format!("`{t}`: {e}"))?;
                values.insert(t.to_string(), data.to_vec());
            }
        }
        let mut all = sink_errors
            .lock()
            .map_err(|_| "sensitivity lock poisoned".to_string())?;
        for pair in list {
            if let (Some(y), Some(q)) = (
                values.get(pair.float_output.as_str()),
                values.get(pair.quantized_output.as_str()),
            ) {
                all.entry((file.to_string(), pair.op.clone()))
                    .or_default()
                    .add(y, q)
                    .map_err(|e| format!("{file}: `{}`: {e}", pair.op))?;
            }
        }
        Ok(())
    });
    let items = ranking_items(&p.validation, size)?;
    let task = Task::new(&p.fp32.name, &[p.options.recipe.name()]);
    let run = Observed {
        dir: &dir,
        items: &items,
        decode: true,
    };
    run_observed(&run, vec![observer], &task, Stage::Sensitivity, ctx, sink)
        .context("sensitivity")?;
    let errors = errors
        .lock()
        .map_err(|_| anyhow::anyhow!("sensitivity lock poisoned"))?
        .clone();
    Ok(sensitivity::ranking(&pairs, &errors))
}

/// An entry that evaluates or measures `model` (and `extra` folders) on the validation set.
fn validation_entry(
    p: &Prepared,
    req: &Request,
    model: &str,
    extra: Vec<(String, PathBuf)>,
) -> ModelEntry {
    let mut e = ModelEntry::new(model, p.fp32.kind(), p.validation.clone());
    e.limit = req.validate_size;
    e.latency_samples = TRAJECTORY_SAMPLES;
    e.extra_arms = extra;
    e
}

fn open(
    entry: &ModelEntry,
    measure: &MeasureConfig,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<Box<dyn Workload>> {
    super::run::open_workload(entry, measure, ctx, sink)
}

/// The per-op ranking, for `quantbench sensitivity`.
pub fn sensitivity(req: &Request, ctx: &Context, sink: &mut dyn FnMut(Event)) -> Result<Ranked> {
    let p = prepare(req, ctx, sink)?;
    let ops = rank(&p, req.validate_size, ctx, sink)?;
    let w = open(
        &validation_entry(&p, req, &req.model, vec![]),
        &req.measure,
        ctx,
        &mut |_| {},
    )?;
    let (manifest, sha256) = w.dataset();
    let items = match ranking_items(&p.validation, req.validate_size)? {
        CalibrationItems::Speech(v) => v.len(),
        CalibrationItems::Vqa(v) => v.len(),
    };
    Ok(Ranked {
        ops,
        validation: ValidationSet {
            manifest,
            sha256,
            items,
        },
        method: sensitivity::METHOD,
    })
}

/// The metric of a validation workload's only arm, with progress as `Stage::Validate`.
fn validate_arm(
    w: &mut dyn Workload,
    task: &Task,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<super::workload::Evaluated> {
    w.evaluate(0, &ctx.cancel, &mut |done, total, _| {
        sink(Event::Progress {
            task: task.clone(),
            stage: Stage::Validate,
            done,
            total,
        })
    })
}

/// Builds and validates the model of each step.
struct RealTrial<'a> {
    p: &'a Prepared,
    req: &'a Request,
    ctx: &'a Context,
    sink: &'a mut dyn FnMut(Event),
    started: Instant,
    dirs: Vec<PathBuf>,
    total_ops: usize,
}

impl RealTrial<'_> {
    fn build(&mut self, step: usize, reverted: &[String]) -> Result<PathBuf> {
        let dir = self.p.work.path().join(format!("step-{step:03}"));
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        let mut options = self.p.options.clone();
        options.ignored.names.extend(reverted.iter().cloned());
        quantize_folder(
            &self.p.src,
            &dir,
            &self.p.files,
            options,
            self.p.calibration.as_ref(),
            &mut |_| {},
        )?;
        Ok(dir)
    }
}

impl search::Trial for RealTrial<'_> {
    fn validate(&mut self, step: usize, reverted: &[String]) -> Result<f64> {
        self.ctx.cancel.check()?;
        let dir = self.build(step, reverted)?;
        let entry = validation_entry(self.p, self.req, &dir.display().to_string(), vec![]);
        let mut w = open(&entry, &self.req.measure, self.ctx, &mut |_| {})?;
        let task = Task::new(&self.p.fp32.name, &[&format!("step {step}")]);
        let e = validate_arm(w.as_mut(), &task, self.ctx, &mut *self.sink)?;
        self.dirs.push(dir);
        e.accuracy.value.with_context(|| {
            format!("step {step}: the model has no accuracy on the validation set")
        })
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn stepped(&mut self, s: &ControlStep) -> Result<()> {
        let per_step = self.elapsed() / (s.step + 1) as f64;
        // At most every op reverted and then tried again, within the limits.
        let bound =
            (self.req.limits.max_reverts.min(self.total_ops) * 2 + 1).saturating_sub(s.step + 1);
        let eta =
            (per_step * bound as f64).min((self.req.limits.max_seconds - self.elapsed()).max(0.0));
        (self.sink)(Event::ControlStep {
            model: self.p.fp32.name.clone(),
            step: Box::new(s.clone()),
            eta_seconds: eta,
        });
        (self.sink)(Event::Note(format!(
            "accuracy control {}: step {} {} → value {:.4}, drop {:.2} ({}), {} ops in float; ETA ≤ {:.0} s",
            self.p.fp32.name,
            s.step,
            s.action.text(),
            s.value,
            s.drop,
            if s.within_budget { "within budget" } else { "over budget" },
            s.reverted,
            eta
        )));
        Ok(())
    }
}

/// Why each op of the chosen model is in float (or back in INT8).
fn why(op: &str, found: &search::Found, ranked: &OpSensitivity, rank: usize) -> Option<String> {
    let mut notes = Vec::new();
    for s in &found.trajectory {
        match &s.action {
            StepAction::Revert { op: o } if o == op => notes.push(format!(
                "ranked {rank} (NMSE {}); reverting it at step {} left a drop of {:.2}",
                ranked.nmse.map_or("n/a".into(), |v| format!("{v:.3e}")),
                s.step,
                s.drop
            )),
            StepAction::RevertFirst { count } if rank <= *count => notes.push(format!(
                "among the ranking's first {count}, reverted at step {} (drop {:.2})",
                s.step, s.drop
            )),
            StepAction::Requantize { op: o, kept } if o == op => notes.push(if *kept {
                format!(
                    "back in INT8 at step {}: drop {:.2} still within budget",
                    s.step, s.drop
                )
            } else {
                format!(
                    "needed: re-quantizing it at step {} gave a drop of {:.2}",
                    s.step, s.drop
                )
            }),
            _ => {}
        }
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// Measures every model of the trajectory against FP32 through the interleaved loop (the series that do not
/// transcribe or caption whole items) and writes each step's medians and speedups. The steps go in batches
/// of `TRAJECTORY_BATCH`, each with its own FP32 arm: every open session keeps a spinning thread pool, and
/// dozens of them at once would time the pools rather than the models.
fn measure_trajectory(
    p: &Prepared,
    req: &Request,
    found: &mut search::Found,
    dirs: &[PathBuf],
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<()> {
    let series: Vec<String> = p
        .fp32
        .kind()
        .series()
        .iter()
        .map(|s| s.name)
        .filter(|n| !matches!(*n, "end_to_end" | "caption"))
        .map(String::from)
        .collect();
    for (batch, chunk) in dirs.chunks(TRAJECTORY_BATCH).enumerate() {
        let first = batch * TRAJECTORY_BATCH;
        let extra = chunk
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("step {}", first + i), d.clone()))
            .collect();
        let mut entry = validation_entry(p, req, &req.model, extra);
        entry.only_series = series.clone();
        let mut w = open(&entry, &req.measure, ctx, sink)?;
        let measured = super::interleave::latencies(w.as_mut(), &req.measure, &ctx.cancel, sink)?;
        for (step, m) in found.trajectory[first..]
            .iter_mut()
            .zip(measured.into_iter().skip(1))
        {
            for (name, (s, speedup)) in m {
                step.latency_ms.insert(name.clone(), s.stats.median_ms);
                if let Some(r) = speedup {
                    step.speedup.insert(name, r);
                }
            }
        }
    }
    Ok(())
}

/// Where the cache keeps the chosen model for a request.
fn cached_dir(ctx: &Context, p: &Prepared, req: &Request, validation_sha256: &str) -> PathBuf {
    let key = serde_json::json!({
        "options": p.options.parameters(),
        "ignored": p.options.ignored,
        "calibration": p.calibration.as_ref().map(|c| c.sha256.clone()),
        "budget": req.budget,
        "validation": validation_sha256,
        "max_reverts": req.limits.max_reverts,
        "max_seconds": req.limits.max_seconds,
    })
    .to_string();
    super::variants::quantized_root(ctx, &p.fp32).join(format!(
        "int8-{}-ac-{}",
        req.recipe.name(),
        &crate::fsutil::sha256_bytes(key.as_bytes())[..12]
    ))
}

/// Runs the search and publishes the chosen model into `out` (or the cache; an existing folder is
/// reused there). An existing `out` is refused unless `force`.
pub fn accuracy_control(
    req: &Request,
    out: Option<&Path>,
    force: bool,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<Outcome> {
    if let Some(o) = out {
        if o.exists() && !force {
            bail!(
                "{}: already exists (pass --force to replace it)",
                o.display()
            );
        }
    }
    let started = Instant::now();
    let p = prepare(req, ctx, sink)?;
    let fp32_entry = validation_entry(&p, req, &req.model, vec![]);
    let mut fp32 = open(&fp32_entry, &req.measure, ctx, sink)?;
    let (manifest, sha256) = fp32.dataset();
    let dst = match out {
        Some(o) => o.to_path_buf(),
        None => cached_dir(ctx, &p, req, &sha256),
    };
    if out.is_none() {
        if let (Ok(Some(summary)), Ok(Some(record))) = (read_sidecar(&dst), read_control(&dst)) {
            sink(Event::Note(format!(
                "accuracy control {}: using {} (chosen earlier for the same request)",
                p.fp32.name,
                dst.display()
            )));
            return Ok(Outcome {
                dir: dst,
                summary,
                record,
            });
        }
    }
    let metric = p.fp32.kind().metric();
    let base = validate_arm(
        fp32.as_mut(),
        &Task::new(&p.fp32.name, &["fp32"]),
        ctx,
        sink,
    )?;
    let fp32_value = base.accuracy.value.context("FP32 has no accuracy on the validation set (a model with random weights cannot be accuracy-controlled)")?;
    let items = base.accuracy.n.unwrap_or(0);
    drop(fp32);
    sink(Event::Note(format!(
        "accuracy control {}: FP32 {} on {} validation items = {:.4}; ranking the ops ...",
        p.fp32.name,
        metric.label(),
        items,
        fp32_value
    )));
    let ranked = rank(&p, req.validate_size, ctx, sink)?;
    let order: Vec<String> = ranked.iter().map(|o| o.op.clone()).collect();
    let mut trial = RealTrial {
        p: &p,
        req,
        ctx,
        sink: &mut *sink,
        started,
        dirs: Vec::new(),
        total_ops: order.len(),
    };
    let mut found = search::search(
        &mut trial, metric, fp32_value, req.budget, &order, req.limits,
    )?;
    let dirs = std::mem::take(&mut trial.dirs);
    drop(trial);
    measure_trajectory(&p, req, &mut found, &dirs, ctx, sink)?;
    let chosen = found.chosen;
    let reverted = found.reverted[chosen].clone();
    let ops = ranked
        .iter()
        .enumerate()
        .map(|(i, o)| ControlOp {
            op: o.op.clone(),
            op_type: o.op_type.clone(),
            files: o.files.clone(),
            rank: i + 1,
            sensitivity: o.nmse,
            reverted: reverted.contains(&o.op),
            why: why(&o.op, &found, o, i + 1),
        })
        .collect();
    let step = &found.trajectory[chosen];
    let record = AccuracyControl {
        recipe: req.recipe.name().to_string(),
        budget: req.budget,
        metric,
        method: sensitivity::METHOD.to_string(),
        validation: ValidationSet {
            manifest,
            sha256,
            items,
        },
        fp32_value,
        value: step.value,
        drop: step.drop,
        met: found.met,
        stopped_by: found.stopped_by.clone(),
        reverted,
        chosen_step: chosen,
        ops,
        trajectory: found.trajectory.clone(),
        seconds: started.elapsed().as_secs_f64(),
    };
    let summary = publish(&dirs[chosen], &dst, &record)?;
    sink(Event::Note(format!(
        "accuracy control {}: {}",
        p.fp32.name,
        record.verdict()
    )));
    Ok(Outcome {
        dir: dst,
        summary,
        record,
    })
}

/// Copies the chosen step's folder, adds the record, and puts it in place whole.
fn publish(step_dir: &Path, dst: &Path, record: &AccuracyControl) -> Result<QuantSummary> {
    crate::fsutil::write_dir_atomic(dst, |tmp| {
        for entry in std::fs::read_dir(step_dir)
            .with_context(|| step_dir.display().to_string())?
            .flatten()
        {
            let from = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if from.is_file() && !hidden {
                std::fs::copy(&from, tmp.join(entry.file_name()))
                    .with_context(|| from.display().to_string())?;
            }
        }
        let text = serde_json::to_string_pretty(record).expect("record serialises") + "\n";
        std::fs::write(tmp.join(SIDECAR_FILE), text).with_context(|| tmp.display().to_string())?;
        crate::assets::entry::seal(tmp, &format!("accuracy control, {}", step_dir.display()))
            .with_context(|| tmp.display().to_string())
    })?;
    read_sidecar(dst)?.with_context(|| format!("{}: no quantization sidecar", dst.display()))
}
