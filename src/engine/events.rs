use crate::measure::stats::Summary;
use crate::quant::QuantSummary;
use crate::results::{ItemResult, ModelResult, PartSize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Fetch,
    Convert,
    Load,
    Calibrate,
    Smooth,
    Quantize,
    Evaluate,
    MeasureEncoder,
    MeasureDecoderStep,
    MeasureEndToEnd,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Convert => "convert",
            Stage::Load => "load",
            Stage::Calibrate => "calibration statistics",
            Stage::Smooth => "smoothing",
            Stage::Quantize => "quantize",
            Stage::Evaluate => "evaluate",
            Stage::MeasureEncoder => "latency: encoder",
            Stage::MeasureDecoderStep => "latency: decoder step",
            Stage::MeasureEndToEnd => "latency: end to end",
        }
    }
}

/// What a step works on: one model and the variants it touches (all of them while measuring, since the
/// series alternate between variants).
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
    /// One utterance transcribed during the accuracy pass.
    Item {
        model: String,
        variant: String,
        index: usize,
        item: ItemResult,
    },
    /// A latency series of one variant is complete (encoder, decoder step).
    Series {
        model: String,
        variant: String,
        stage: Stage,
        summary: Summary,
        samples_ms: Vec<f64>,
        /// Median of the per-pair ratios against FP32's series in the same run.
        speedup: Option<f64>,
    },
    ModelDone(Box<ModelResult>),
}
