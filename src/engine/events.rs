use crate::results::{ItemResult, ModelResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone)]
pub enum Event {
    /// A free-form step note (asset fetches, conversions).
    Note(String),
    Progress {
        model: String,
        stage: Stage,
        done: usize,
        total: usize,
    },
    Item {
        model: String,
        index: usize,
        item: ItemResult,
    },
    ModelDone(Box<ModelResult>),
}
