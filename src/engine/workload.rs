//! What a model family under test is to the measuring loop: its arms (variants), its latency series, how to
//! time one sample of each, and how to evaluate an arm's accuracy. Whisper and BLIP implement it; so does
//! the mock in the loop's tests.

use std::collections::BTreeMap;

use anyhow::Result;

use super::{Cancel, Event};
use crate::results::{Accuracy, Evaluation, FailedItem, FileHash, Kind, PartSize, WorstItem};

/// One timed sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub ms: f64,
    /// Tokens the sample generated (generation series).
    pub tokens: Option<u32>,
}

/// What a variant is, as its row reports it.
#[derive(Debug, Clone)]
pub struct ArmInfo {
    pub variant: String,
    /// The FP32 arm every other arm is compared with.
    pub baseline: bool,
    pub source_sha256: String,
    pub parts: Vec<PartSize>,
    pub files: Vec<FileHash>,
    pub quantization: Option<crate::quant::QuantSummary>,
    pub accuracy_control: Option<crate::results::control::AccuracyControl>,
}

/// An arm's accuracy with its worst items and per-item outcomes.
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub accuracy: Accuracy,
    pub worst: Vec<WorstItem>,
    pub evaluation: Option<Evaluation>,
    /// Items that failed during this evaluation, left out of the accuracy.
    pub failed: Vec<FailedItem>,
    /// Whole recordings transcribed, when the entry has long-form recordings.
    pub long_form: Option<crate::results::longform::LongForm>,
}

/// Progress of an evaluation: items done of total, and the metric over the items so far.
pub type EvalProgress<'a> = &'a mut dyn FnMut(usize, usize, Option<f64>);

pub trait Workload {
    fn kind(&self) -> Kind;
    /// The model's display name.
    fn model(&self) -> &str;
    fn arms(&self) -> &[ArmInfo];
    /// The series this entry measures, in the kind's order (a subset of `kind().series()`).
    fn series(&self) -> Vec<&'static str>;
    /// Rounds a series gets before any adaptive extension (each round runs every arm once).
    fn rounds(&self, series: &str) -> usize;
    /// Before the first sample of a series (e.g. build the decoder states the step is timed on).
    fn begin(&mut self, _series: &str) -> Result<()> {
        Ok(())
    }
    /// Unmeasured rounds before the measured ones of `series` (`configured`: the experiment's `warmup`).
    fn warmup(&self, _series: &str, configured: usize) -> usize {
        configured
    }
    /// After the warm-up rounds of a series, before its first measured round.
    fn measuring(&mut self, _series: &str) {}
    /// Times one sample of `series` on `arm`; `round` picks the input (inputs repeat past their count).
    /// `sink` sees what the sample produces as it goes (the segments of a long recording).
    fn sample(
        &mut self,
        arm: usize,
        series: &str,
        round: usize,
        sink: &mut dyn FnMut(Event),
    ) -> Result<Sample>;
    /// After the last sample of a series.
    fn end(&mut self, _series: &str) {}
    /// Accuracy of `arm` on the entry's dataset.
    fn evaluate(
        &mut self,
        arm: usize,
        cancel: &Cancel,
        progress: EvalProgress,
    ) -> Result<Evaluated>;
    /// Items that failed before any arm ran (audio that does not decode, images that do not load).
    fn failed_items(&self) -> Vec<FailedItem> {
        Vec::new()
    }
    /// The dataset's path and content hash.
    fn dataset(&self) -> (String, String);
    /// How the series were measured, for the rows (threads, cache length, samples, …).
    fn setup(&self) -> BTreeMap<String, serde_json::Value> {
        BTreeMap::new()
    }
    /// Facts of one arm's measurement, added to its row's setup (e.g. the share of time outside ONNX Runtime).
    fn arm_setup(&self, _arm: usize) -> BTreeMap<String, serde_json::Value> {
        BTreeMap::new()
    }
}
