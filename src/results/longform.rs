//! A Whisper row's long-form outcome: whole recordings transcribed into timed segments, their WER, the
//! real-time factor, and for INT8 rows how far the segment times are from FP32's.

use serde::{Deserialize, Serialize};

use crate::measure::segments::TimingAgreement;
use crate::measure::wer::EditCounts;

/// One timed piece of a transcript, as a row keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimedText {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// One recording transcribed whole.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LongFormRecording {
    pub name: String,
    pub audio_seconds: f64,
    /// Median over the measured transcriptions of this recording.
    pub compute_seconds: f64,
    /// Measured transcriptions the median is over (0: transcribed once, unmeasured, for the accuracy).
    pub runs: usize,
    /// Audio seconds per compute second.
    pub real_time_factor: f64,
    /// 30 s windows decoded.
    pub windows: usize,
    pub word_errors: usize,
    pub reference_words: usize,
    pub reference: String,
    pub hypothesis: String,
    pub segments: Vec<TimedText>,
    /// Joins between clips at which a segment starts near the join (see `measure::segments::joins_met`).
    pub joins_met: usize,
    pub joins: usize,
}

/// Against the FP32 row's long-form outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LongFormVsFp32 {
    /// FP32's compute seconds over this row's, over every recording.
    pub real_time_factor_speedup: f64,
    /// Word error rate points above FP32's.
    pub wer_drop_points: f64,
    /// Segment times against FP32's, over every recording.
    pub timing: TimingAgreement,
    /// Aligned segments whose normalised text equals FP32's.
    pub same_text_segments: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LongForm {
    /// The recordings file (`recordings.toml`) the entry names.
    pub recordings_file: String,
    pub recordings_sha256: String,
    pub recordings: Vec<LongFormRecording>,
    /// Corpus WER over the whole recordings.
    pub wer: f64,
    pub word_counts: EditCounts,
    pub audio_seconds: f64,
    pub compute_seconds: f64,
    pub real_time_factor: f64,
    pub joins_met: usize,
    pub joins: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_fp32: Option<LongFormVsFp32>,
}
