use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;

use super::blip::BlipWorkload;
use super::whisper::WhisperWorkload;
use super::workload::Workload;
use super::Event;
use crate::assets::Cache;
use crate::config::{Experiment, ModelEntry};
use crate::results::{ExperimentResult, Kind, Row, SCHEMA};

/// Where assets live, which ONNX Runtime to load, how many threads sessions use, and the switch another
/// thread flips to stop a run.
#[derive(Debug, Clone)]
pub struct Context {
    pub cache: Cache,
    pub ort_library: Option<PathBuf>,
    pub threads: usize,
    pub cancel: Cancel,
    /// What an audio clip read from a file may be.
    pub audio_limits: crate::data::audio::AudioLimits,
}

/// Shared stop switch: a run checks it between rounds, items and quantization steps.
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

/// The workload of an entry, by what its model is.
pub(super) fn open_workload(
    entry: &ModelEntry,
    measure: &crate::config::MeasureConfig,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<Box<dyn Workload>> {
    Ok(match entry.kind {
        Kind::Whisper => Box::new(WhisperWorkload::open(entry, measure, ctx, sink)?),
        Kind::Blip => Box::new(BlipWorkload::open(entry, measure, ctx, sink)?),
    })
}

/// What a report records of how it was made: the experiment file's text and sha256, and the command line.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub config_file: PathBuf,
    pub config: String,
    pub config_sha256: String,
    pub command_line: Vec<String>,
}

impl Provenance {
    /// Reads the experiment file as it is now (call it when the experiment is loaded).
    pub fn of(config_file: &Path) -> Self {
        let bytes = std::fs::read(config_file).unwrap_or_default();
        Provenance {
            config_file: config_file.to_path_buf(),
            config: String::from_utf8_lossy(&bytes).into_owned(),
            config_sha256: crate::fsutil::sha256_bytes(&bytes),
            command_line: std::env::args().collect(),
        }
    }
}

/// Whether `e` is a run stopped through its [`Cancel`].
pub fn is_cancelled(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Cancelled>())
}

/// Every entry of `exp` through the one loop; the rows in the experiment's order. A run stopped through
/// `ctx.cancel` returns the rows finished so far, `complete: false`, and the entry that was running.
pub fn run_experiment(
    exp: &Experiment,
    provenance: &Provenance,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<ExperimentResult> {
    let started = chrono::Utc::now();
    ctx.init_runtime(sink)?;
    let mut rows = Vec::new();
    for entry in &exp.models {
        match run_entry(entry, exp, ctx, sink) {
            Ok(measured) => rows.extend(measured),
            Err(e) if is_cancelled(&e) => {
                let mut result =
                    experiment_result(exp, provenance, ctx.threads, started, rows, false);
                result.interrupted = Some(entry.model.clone());
                return Ok(result);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(experiment_result(
        exp,
        provenance,
        ctx.threads,
        started,
        rows,
        true,
    ))
}

fn run_entry(
    entry: &ModelEntry,
    exp: &Experiment,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<Vec<Row>> {
    ctx.cancel.check()?;
    let mut entry = entry.clone();
    if let Some(ac) = &entry.accuracy_control {
        let outcome = super::control::accuracy_control(
            &super::control::Request::of_entry(&entry, ac, &exp.measure),
            None,
            false,
            ctx,
            sink,
        )?;
        entry.extra_arms.push((ac.label(), outcome.dir));
    }
    let mut workload = open_workload(&entry, &exp.measure, ctx, sink)?;
    let mut measured = super::interleave::run(
        workload.as_mut(),
        &exp.measure,
        &entry.thresholds,
        &ctx.cancel,
        sink,
    )?;
    for row in &mut measured {
        if let Some(ac) = &row.accuracy_control {
            row.verdicts.push(crate::results::Verdict {
                check: "accuracy_control.validation_drop".into(),
                limit: ac.budget.max_drop,
                value: Some(ac.drop),
                pass: ac.met,
            });
        }
    }
    Ok(measured)
}

/// The outcome of `exp` from the rows measured since `started` (also what the TUI saves mid-session).
pub fn experiment_result(
    exp: &Experiment,
    provenance: &Provenance,
    threads: usize,
    started: chrono::DateTime<chrono::Utc>,
    rows: Vec<Row>,
    complete: bool,
) -> ExperimentResult {
    ExperimentResult {
        schema: SCHEMA.to_string(),
        complete,
        name: exp.name.clone(),
        started_utc: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        config_file: provenance.config_file.display().to_string(),
        config: provenance.config.clone(),
        config_sha256: provenance.config_sha256.clone(),
        command_line: provenance.command_line.clone(),
        interrupted: None,
        environment: super::environment(threads),
        measure: serde_json::to_value(&exp.measure).unwrap_or_default(),
        settings_changed: Vec::new(),
        rows,
    }
}
