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

/// Every entry of `exp` through the one loop; the rows in the experiment's order.
pub fn run_experiment(
    exp: &Experiment,
    config_file: &Path,
    ctx: &Context,
    sink: &mut dyn FnMut(Event),
) -> Result<ExperimentResult> {
    let started = chrono::Utc::now();
    ctx.init_runtime(sink)?;
    let mut rows = Vec::new();
    for entry in &exp.models {
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
        rows.extend(measured);
    }
    Ok(experiment_result(
        exp,
        config_file,
        ctx.threads,
        started,
        rows,
        true,
    ))
}

/// The outcome of `exp` from the rows measured since `started` (also what the TUI saves mid-session).
pub fn experiment_result(
    exp: &Experiment,
    config_file: &Path,
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
        config_file: config_file.display().to_string(),
        environment: super::environment(threads),
        measure: serde_json::to_value(&exp.measure).unwrap_or_default(),
        settings_changed: Vec::new(),
        rows,
    }
}
