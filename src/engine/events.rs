use crate::measure::stats::Ratio;
use crate::quant::QuantSummary;
use crate::results::{Metric, PartSize, Row, Series};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Fetch,
    Convert,
    Load,
    Calibrate,
    Smooth,
    Quantize,
    Evaluate,
    /// Accuracy control: the per-op ranking pass over the validation items.
    Sensitivity,
    /// Accuracy control: one model on the validation set.
    Validate,
    /// A latency series, by name (`encoder`, `vqa`, …).
    Measure(&'static str),
}

impl Stage {
    pub fn label(self) -> String {
        match self {
            Stage::Fetch => "fetch".into(),
            Stage::Convert => "convert".into(),
            Stage::Load => "load".into(),
            Stage::Calibrate => "calibration statistics".into(),
            Stage::Smooth => "smoothing".into(),
            Stage::Quantize => "quantize".into(),
            Stage::Evaluate => "evaluate".into(),
            Stage::Sensitivity => "sensitivity".into(),
            Stage::Validate => "validate".into(),
            Stage::Measure(series) => format!("latency: {}", series.replace('_', " ")),
        }
    }
}

/// What a step works on: one model and the variants it touches (all of them while measuring, since the
/// rounds run every variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub model: String,
    pub variants: Vec<String>,
}

impl Task {
    pub fn new(model: &str, variants: &[&str]) -> Self {
        Task {
            model: model.to_string(),
            variants: variants.iter().map(|v| v.to_string()).collect(),
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.model, self.variants.join("/"))
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    /// A free-form step note (asset fetches, conversions).
    Note(String),
    /// Something the user should look at; the run goes on.
    Warning(String),
    Progress {
        task: Task,
        stage: Stage,
        done: usize,
        total: usize,
    },
    /// A variant is loaded: its graphs' sizes and, for INT8 variants, how it was made.
    Opened {
        model: String,
        variant: String,
        parts: Vec<PartSize>,
        quantization: Option<QuantSummary>,
    },
    /// Evaluation so far: items done and the metric over them.
    Accuracy {
        model: String,
        variant: String,
        metric: Metric,
        done: usize,
        total: usize,
        so_far: Option<f64>,
    },
    /// A latency series of one variant is complete, with its speedup against FP32's in the same rounds.
    Series {
        model: String,
        variant: String,
        name: &'static str,
        series: Box<Series>,
        speedup: Option<Ratio>,
    },
    /// Accuracy control validated one more model (the trajectory grows); `eta_seconds` bounds what is left.
    ControlStep {
        model: String,
        step: Box<crate::results::control::ControlStep>,
        eta_seconds: f64,
    },
    /// A segment of a long recording, as soon as its window is decoded.
    Segment {
        model: String,
        variant: String,
        recording: String,
        segment: crate::results::longform::TimedText,
    },
    /// A row is finished: every series, the accuracy, the verdicts.
    RowDone(Box<Row>),
}
