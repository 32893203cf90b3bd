//! Rows of the results table: one model in one variant, with what has arrived for it so far.

use crate::engine::{Stage, BASELINE};
use crate::measure::stats::Summary;
use crate::measure::wer::MarkedWords;
use crate::quant::QuantSummary;
use crate::results::{ModelResult, PartSize};

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
            Stage::Quantize => Status::Quantizing,
            Stage::Evaluate => Status::Evaluating,
            Stage::MeasureEncoder | Stage::MeasureDecoderStep | Stage::MeasureEndToEnd => {
                Status::Measuring
            }
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

/// A finished latency series as it arrived.
#[derive(Debug, Clone)]
pub struct Series {
    pub summary: Summary,
    pub samples_ms: Vec<f64>,
    pub speedup: Option<f64>,
}

/// One transcribed utterance with the words that differ marked.
#[derive(Debug, Clone)]
pub struct Utterance {
    pub audio: String,
    pub word_errors: usize,
    pub reference_words: usize,
    pub reference: MarkedWords,
    pub hypothesis: MarkedWords,
}

/// One model in one variant: a row of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    pub entry: usize,
    pub model: String,
    pub variant: String,
    pub status: Status,
    pub parts: Vec<PartSize>,
    pub quantization: Option<QuantSummary>,
    pub encoder: Option<Series>,
    pub decoder_step: Option<Series>,
    pub utterances: Vec<Utterance>,
    pub result: Option<Box<ModelResult>>,
}

impl Row {
    pub(super) fn new(entry: usize, model: String, variant: String) -> Self {
        Row {
            entry,
            model,
            variant,
            status: Status::Pending,
            parts: Vec::new(),
            quantization: None,
            encoder: None,
            decoder_step: None,
            utterances: Vec::new(),
            result: None,
        }
    }

    pub(super) fn reset(&mut self) {
        *self = Row::new(self.entry, self.model.clone(), self.variant.clone());
    }

    pub fn is_baseline(&self) -> bool {
        self.variant == BASELINE
    }

    pub fn bytes(&self) -> Option<u64> {
        (!self.parts.is_empty()).then(|| self.parts.iter().map(|p| p.bytes).sum())
    }

    /// WER so far (errors, reference words) over the utterances transcribed.
    pub fn running_wer(&self) -> Option<f64> {
        let words: usize = self.utterances.iter().map(|u| u.reference_words).sum();
        let errors: usize = self.utterances.iter().map(|u| u.word_errors).sum();
        (words > 0).then(|| errors as f64 / words as f64)
    }

    /// The utterances with the most word errors, worst first.
    pub fn worst(&self, n: usize) -> Vec<&Utterance> {
        let mut v: Vec<&Utterance> = self
            .utterances
            .iter()
            .filter(|u| u.word_errors > 0)
            .collect();
        v.sort_by_key(|u| std::cmp::Reverse(u.word_errors));
        v.truncate(n);
        v
    }
}
