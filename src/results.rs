//! The data model of an experiment's outcome. Reports and (later) the TUI read only this.

use serde::{Deserialize, Serialize};

use crate::measure::stats::Summary;
use crate::measure::wer::EditCounts;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemResult {
    pub audio: String,
    pub reference: String,
    pub hypothesis: String,
    pub latency_ms: f64,
    /// Word edits after Whisper normalisation.
    pub word_errors: usize,
    pub reference_words: usize,
}

/// `quantbench eval` output: per item and totals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalResult {
    pub model: String,
    pub variant: String,
    pub manifest: String,
    pub n: usize,
    pub wer: f64,
    pub cer: f64,
    pub word_counts: EditCounts,
    pub char_counts: EditCounts,
    pub latency_ms: Summary,
    pub items: Vec<ItemResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartSize {
    pub part: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyResult {
    pub threads: usize,
    pub warmup: usize,
    pub encoder_ms: Summary,
    pub decoder_step_ms: Summary,
    pub decoder_cache_len: usize,
    /// Whole transcription per utterance, over every pass.
    pub end_to_end_ms: Summary,
    pub e2e_passes: usize,
    /// Share of end-to-end time spent outside ONNX Runtime calls (features, decoding loop, tokenizer).
    pub outside_ort_share: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelResult {
    pub model: String,
    pub variant: String,
    pub source_sha256: String,
    pub dataset: String,
    pub dataset_sha256: String,
    pub parts: Vec<PartSize>,
    pub accuracy: EvalResult,
    pub latency: LatencyResult,
    /// The recipe's sidecar, for quantized variants.
    pub quantization: Option<crate::quant::QuantSummary>,
    /// Against the FP32 row of the same model, measured in the same interleaved runs.
    pub vs_fp32: Option<Comparison>,
}

/// A variant against FP32. Speedups are medians of per-pair ratios (FP32 time / variant time).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub encoder_speedup: f64,
    pub decoder_step_speedup: f64,
    pub end_to_end_speedup: f64,
    /// WER(variant) − WER(FP32) in percentage points: the drop of (1 − WER).
    pub wer_drop_points: f64,
    /// Bytes of the variant's graphs / bytes of FP32's.
    pub size_ratio: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    pub cpu_model: String,
    pub cpu_flags: Vec<String>,
    pub cores: usize,
    pub threads: usize,
    pub ort_version: String,
    pub ort_library: String,
    pub quantbench_version: String,
    pub git_commit: String,
    pub os: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentResult {
    pub name: String,
    pub started_utc: String,
    pub finished_utc: String,
    pub config_file: String,
    pub environment: Environment,
    pub models: Vec<ModelResult>,
}
