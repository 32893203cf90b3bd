//! Rows of the results table: one model in one variant, with what has arrived for it so far.

use std::collections::BTreeMap;

use crate::engine::{Stage, BASELINE};
use crate::measure::stats::Ratio;
use crate::quant::QuantSummary;
use crate::results::longform::TimedText;
use crate::results::{Kind, Metric, PartSize, Row as ResultRow, Series};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Loading,
    Calibrating,
    Quantizing,
    Measuring,
    Evaluating,
    Done,
    Failed,
    Stopped,
}

impl Status {
    pub(super) fn of(stage: Stage) -> Status {
        match stage {
            Stage::Fetch | Stage::Convert | Stage::Load => Status::Loading,
            Stage::Calibrate | Stage::Smooth => Status::Calibrating,
            Stage::Quantize | Stage::Sensitivity | Stage::Validate => Status::Quantizing,
            Stage::Evaluate => Status::Evaluating,
            Stage::Measure(_) => Status::Measuring,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Loading => "loading",
            Status::Calibrating => "calibrating",
            Status::Quantizing => "quantizing",
            Status::Measuring => "measuring",
            Status::Evaluating => "evaluating",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }

    pub fn is_active(self) -> bool {
        !matches!(
            self,
            Status::Pending | Status::Done | Status::Failed | Status::Stopped
        )
    }
}

/// A finished series as it arrived, before its row is done.
#[derive(Debug, Clone)]
pub struct LiveSeries {
    pub series: Series,
    pub speedup: Option<Ratio>,
}

/// The segments of the long recording a row is transcribing, as they are decoded.
#[derive(Debug, Clone, Default)]
pub struct LiveSegments {
    pub recording: String,
    pub segments: Vec<TimedText>,
}

/// Segments kept per row: a recording of a few minutes has a few dozen.
const KEEP_SEGMENTS: usize = 500;

impl LiveSegments {
    /// A segment of `recording`; another recording, or a start before the last (the next pass), starts over.
    pub(super) fn push(&mut self, recording: String, segment: TimedText) {
        let again = self
            .segments
            .last()
            .is_some_and(|l| segment.start < l.start);
        if recording != self.recording || again {
            self.recording = recording;
            self.segments.clear();
        }
        if self.segments.len() == KEEP_SEGMENTS {
            self.segments.remove(0);
        }
        self.segments.push(segment);
    }
}

/// The metric over the items evaluated so far.
#[derive(Debug, Clone, Copy)]
pub struct Running {
    pub metric: Metric,
    pub value: Option<f64>,
    pub done: usize,
    pub total: usize,
}

/// One model in one variant: a row of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    pub entry: usize,
    pub model: String,
    pub kind: Kind,
    pub variant: String,
    pub status: Status,
    pub parts: Vec<PartSize>,
    pub quantization: Option<QuantSummary>,
    pub live: BTreeMap<String, LiveSeries>,
    pub running: Option<Running>,
    pub result: Option<Box<ResultRow>>,
    pub segments: LiveSegments,
}

impl Row {
    pub(super) fn new(entry: usize, model: String, kind: Kind, variant: String) -> Self {
        Row {
            entry,
            model,
            kind,
            variant,
            status: Status::Pending,
            parts: Vec::new(),
            quantization: None,
            live: BTreeMap::new(),
            running: None,
            result: None,
            segments: LiveSegments::default(),
        }
    }

    pub(super) fn reset(&mut self) {
        *self = Row::new(
            self.entry,
            self.model.clone(),
            self.kind,
            self.variant.clone(),
        );
    }

    pub fn is_baseline(&self) -> bool {
        self.variant == BASELINE
    }

    pub fn bytes(&self) -> Option<u64> {
        (!self.parts.is_empty()).then(|| self.parts.iter().map(|p| p.bytes).sum())
    }

    /// A series: the finished row's, else the one that arrived live.
    pub fn series(&self, name: &str) -> Option<&Series> {
        match &self.result {
            Some(r) => r.series.get(name),
            None => self.live.get(name).map(|l| &l.series),
        }
    }

    pub fn speedup(&self, name: &str) -> Option<Ratio> {
        match &self.result {
            Some(r) => r.speedup(name),
            None => self.live.get(name).and_then(|l| l.speedup),
        }
    }
}
