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

/// One VQA question answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VqaItemResult {
    pub image: String,
    pub question: String,
    pub answer: String,
    pub references: Vec<String>,
    pub answer_type: Option<String>,
    /// VQA accuracy in [0, 1]; `correct` when it is 1.
    pub accuracy: f64,
    pub correct: bool,
    pub question_truncated: bool,
    pub latency_ms: f64,
}

/// `quantbench eval` on a VQA manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VqaEvalResult {
    pub model: String,
    pub manifest: String,
    pub n: usize,
    pub accuracy: f64,
    pub accuracy_by_type: std::collections::BTreeMap<String, f64>,
    pub latency_ms: Summary,
    pub items: Vec<VqaItemResult>,
}

/// One image captioned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptionItemResult {
    pub image: String,
    pub caption: String,
    pub references: Vec<String>,
    pub exact_match: bool,
    pub token_f1: f64,
    pub latency_ms: f64,
}

/// `quantbench eval` on a caption manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptionEvalResult {
    pub model: String,
    pub manifest: String,
    pub n: usize,
    pub exact_match: f64,
    pub token_f1: f64,
    pub latency_ms: Summary,
    pub items: Vec<CaptionItemResult>,
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
    /// The raw series, in run order.
    #[serde(default)]
    pub encoder_runs_ms: Vec<f64>,
    #[serde(default)]
    pub decoder_step_runs_ms: Vec<f64>,
    #[serde(default)]
    pub end_to_end_runs_ms: Vec<f64>,
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
    /// The experiment's thresholds applied to this row (empty for FP32 or when none are set).
    pub verdicts: Vec<Verdict>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub check: String,
    pub limit: f64,
    pub value: f64,
    pub pass: bool,
}

impl Comparison {
    /// Applies every limit that is set; `wer` is (FP32, variant).
    pub fn verdicts(&self, t: &crate::config::Thresholds, wer: (f64, f64)) -> Vec<Verdict> {
        let mut v = Vec::new();
        let mut at_most = |check: &str, limit: Option<f64>, value: f64| {
            if let Some(limit) = limit {
                v.push(Verdict {
                    check: check.into(),
                    limit,
                    value,
                    pass: value <= limit,
                });
            }
        };
        at_most(
            "accuracy drop (points) ≤",
            t.max_accuracy_drop_points,
            self.wer_drop_points,
        );
        let mut at_least = |check: &str, limit: Option<f64>, value: f64| {
            if let Some(limit) = limit {
                v.push(Verdict {
                    check: check.into(),
                    limit,
                    value,
                    pass: value >= limit,
                });
            }
        };
        let relative = (1.0 - wer.1) / (1.0 - wer.0);
        at_least("relative accuracy ≥", t.min_relative_accuracy, relative);
        at_least(
            "end-to-end speedup ≥",
            t.min_end_to_end_speedup,
            self.end_to_end_speedup,
        );
        at_least(
            "encoder speedup ≥",
            t.min_encoder_speedup,
            self.encoder_speedup,
        );
        at_least(
            "decoder-step speedup ≥",
            t.min_decoder_step_speedup,
            self.decoder_step_speedup,
        );
        v
    }
}

impl ExperimentResult {
    /// Every failed verdict, as "model variant: check limit (got value)".
    pub fn failures(&self) -> Vec<String> {
        let rows = self
            .models
            .iter()
            .map(|m| (&m.model, &m.variant, &m.verdicts))
            .chain(
                self.blip
                    .iter()
                    .map(|m| (&m.model, &m.variant, &m.verdicts)),
            );
        rows.flat_map(|(model, variant, verdicts)| {
            verdicts.iter().filter(|v| !v.pass).map(move |v| {
                format!(
                    "{model} {variant}: {} {} (got {:.3})",
                    v.check, v.limit, v.value
                )
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Thresholds;

    #[test]
    fn verdicts_apply_absolute_and_relative_limits() {
        let c = Comparison {
            encoder_speedup: 1.9,
            decoder_step_speedup: 2.6,
            end_to_end_speedup: 2.1,
            wer_drop_points: 0.6,
            size_ratio: 0.25,
        };
        let t = Thresholds {
            max_accuracy_drop_points: Some(0.5),
            min_relative_accuracy: Some(0.99),
            min_end_to_end_speedup: Some(2.0),
            min_encoder_speedup: None,
            min_decoder_step_speedup: Some(2.5),
        };
        let v = c.verdicts(&t, (0.060, 0.066));
        let pass: Vec<bool> = v.iter().map(|v| v.pass).collect();
        // drop 0.6 > 0.5 fails; (1 - 0.066) / (1 - 0.060) = 0.9936 passes; speedups pass.
        assert_eq!(pass, vec![false, true, true, true]);
        assert!((v[1].value - 0.934 / 0.94).abs() < 1e-12);
        assert!(Comparison::verdicts(&c, &Thresholds::default(), (0.0, 0.0)).is_empty());
    }
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
    /// Measurement settings changed from the TUI against the experiment file ("threads 2 → 1").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings_changed: Vec<String>,
    pub models: Vec<ModelResult>,
    /// BLIP rows (captioning and question answering).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blip: Vec<BlipModelResult>,
}

/// A BLIP against the FP32 row of the same model, measured in the same interleaved runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlipComparison {
    pub vqa_speedup: f64,
    pub caption_speedup: f64,
    /// VQA accuracy(FP32) − accuracy(variant), in points; absent when accuracy is not measured.
    pub vqa_accuracy_drop_points: Option<f64>,
    pub caption_exact_match_drop_points: Option<f64>,
    pub size_ratio: f64,
}

/// One BLIP variant: sizes, answer and caption latency, accuracy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlipModelResult {
    pub model: String,
    pub variant: String,
    pub source_sha256: String,
    pub parts: Vec<PartSize>,
    pub threads: usize,
    pub warmup: usize,
    /// Whole `generate_answer` per sample (image preprocessing, three graphs, greedy decoding).
    pub vqa_latency_ms: Summary,
    /// Whole `generate_caption` per image.
    pub caption_latency_ms: Summary,
    pub vqa_runs_ms: Vec<f64>,
    pub caption_runs_ms: Vec<f64>,
    pub latency_dataset: String,
    /// Why accuracy is not given (a model with random weights), instead of a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_na: Option<String>,
    pub vqa: Option<VqaEvalResult>,
    pub captions: Option<CaptionEvalResult>,
    pub quantization: Option<crate::quant::QuantSummary>,
    pub vs_fp32: Option<BlipComparison>,
    pub verdicts: Vec<Verdict>,
}

impl BlipComparison {
    /// The accuracy-drop limit applies to VQA accuracy, the end-to-end speedup limit to answering.
    pub fn verdicts(&self, t: &crate::config::Thresholds) -> Vec<Verdict> {
        let mut v = Vec::new();
        if let (Some(limit), Some(value)) =
            (t.max_accuracy_drop_points, self.vqa_accuracy_drop_points)
        {
            v.push(Verdict {
                check: "VQA accuracy drop (points) ≤".into(),
                limit,
                value,
                pass: value <= limit,
            });
        }
        if let Some(limit) = t.min_end_to_end_speedup {
            v.push(Verdict {
                check: "VQA speedup ≥".into(),
                limit,
                value: self.vqa_speedup,
                pass: self.vqa_speedup >= limit,
            });
        }
        v
    }
}
