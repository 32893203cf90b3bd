//! The experiment file (TOML): what to run, on which data, how to measure.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct ConfigError {
    pub path: PathBuf,
    pub what: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub measure: MeasureConfig,
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Intra-op threads per session; 0 or absent = every core.
    #[serde(default)]
    pub threads: usize,
    /// Path to libonnxruntime (after ORT_DYLIB_PATH, before the asset cache).
    pub ort_library: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureConfig {
    /// Unmeasured runs before each latency series.
    pub warmup: usize,
    /// Measured runs of the encoder call and of the decoder step.
    pub runs: usize,
    /// Self-attention cache length for the decoder-step measurement (tokens already decoded).
    pub decoder_cache_len: usize,
    /// Passes over the dataset for end-to-end latency (the first pass also gives the accuracy).
    pub e2e_passes: usize,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        MeasureConfig {
            warmup: 3,
            runs: 20,
            decoder_cache_len: 32,
            e2e_passes: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Built-in name or path to a model folder.
    pub model: String,
    /// Speech manifest (Whisper) or VQA manifest (BLIP), relative to the experiment file; `easy-vqa:test`
    /// is easy-VQA's test split, prepared in the cache.
    pub dataset: PathBuf,
    /// BLIP: caption manifest (default: easy-VQA's test captions with `easy-vqa:test`, else none).
    #[serde(default)]
    pub captions: Option<PathBuf>,
    /// BLIP: samples whose answer and caption latency are measured (the first N of each manifest).
    #[serde(default = "default_latency_samples")]
    pub latency_samples: usize,
    /// Use only the first N items (0 = all).
    #[serde(default)]
    pub limit: usize,
    /// Variants to compare: "fp32" and recipe names (e.g. "dynamic"); default just "fp32".
    #[serde(default)]
    pub variants: Vec<String>,
    /// Limits every non-FP32 variant must meet; `quantbench report` exits with code 3 when one fails.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Nodes every recipe keeps in float (by name, regex or op type).
    #[serde(default)]
    pub ignored_scope: crate::quant::IgnoredScope,
    /// Speech manifest the static recipe calibrates on, relative to the experiment file
    /// (default: datasets/speech-calib/manifest.jsonl).
    #[serde(default)]
    pub calibration: Option<PathBuf>,
    /// The static recipe's parameters (estimator, smooth_quant, bias_correction, calibration_size, seed).
    #[serde(default, rename = "static")]
    pub static_params: crate::quant::StaticParams,
    /// A recipe per graph (file name without `.onnx`) for every INT8 variant, e.g.
    /// `parts = { text_decoder_with_past = "weights" }`.
    #[serde(default)]
    pub parts: std::collections::BTreeMap<String, crate::quant::Recipe>,
}

fn default_latency_samples() -> usize {
    100
}

/// Datasets named rather than given by path.
pub const EASY_VQA_TEST: &str = "easy-vqa:test";

impl ModelEntry {
    pub fn quant_setup(&self) -> crate::engine::QuantSetup {
        crate::engine::QuantSetup {
            ignored: self.ignored_scope.clone(),
            params: self.static_params.clone(),
            calibration: self.calibration.clone(),
            parts: self.parts.clone(),
        }
    }
}

/// A release gate. Every limit is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Largest allowed WER increase over FP32, in percentage points (the drop of 1 − WER).
    pub max_accuracy_drop_points: Option<f64>,
    /// Smallest allowed (1 − WER_int8) / (1 − WER_fp32), as MLPerf's "99 % of FP32".
    pub min_relative_accuracy: Option<f64>,
    pub min_end_to_end_speedup: Option<f64>,
    pub min_encoder_speedup: Option<f64>,
    pub min_decoder_step_speedup: Option<f64>,
}

impl ModelEntry {
    /// The variants to run, FP32 first (the baseline every other row is compared with).
    pub fn variants(&self) -> Vec<String> {
        let mut v = vec![crate::engine::BASELINE.to_string()];
        for x in &self.variants {
            if !v.contains(x) {
                v.push(x.clone());
            }
        }
        v
    }
}

impl Experiment {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let err = |what: String| ConfigError {
            path: path.to_path_buf(),
            what,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut exp: Experiment = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].lines().count().max(1));
            let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
            err(format!("invalid experiment{at}: {}", e.message().trim()))
        })?;
        if exp.models.is_empty() {
            return Err(err("no [[models]] to run".into()));
        }
        if exp.measure.runs == 0 || exp.measure.e2e_passes == 0 {
            return Err(err(
                "measure.runs and measure.e2e_passes must be at least 1".into(),
            ));
        }
        if exp.name.is_empty() || exp.name.contains(['/', '\\']) {
            return Err(err(format!(
                "name `{}` must be non-empty and contain no path separators",
                exp.name
            )));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for m in &mut exp.models {
            if m.dataset.is_relative() && m.dataset != Path::new(EASY_VQA_TEST) {
                m.dataset = base.join(&m.dataset);
            }
            if let Some(c) = m.captions.as_mut().filter(|c| c.is_relative()) {
                *c = base.join(&*c);
            }
            if let Some(c) = m.calibration.as_mut().filter(|c| c.is_relative()) {
                *c = base.join(&*c);
            }
        }
        Ok(exp)
    }

    pub fn threads(&self) -> usize {
        if self.runtime.threads == 0 {
            crate::runtime::default_threads()
        } else {
            self.runtime.threads
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.toml");
        std::fs::write(
            &p,
            "name = \"x\"\n[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"d/m.jsonl\"\n",
        )
        .unwrap();
        let e = Experiment::load(&p).unwrap();
        assert_eq!(e.measure.runs, 20);
        assert_eq!(e.models[0].dataset, dir.path().join("d/m.jsonl"));
        std::fs::write(&p, "name = \"x\"\nmodels = []\n").unwrap();
        assert!(Experiment::load(&p)
            .unwrap_err()
            .to_string()
            .contains("no [[models]]"));
        std::fs::write(
            &p,
            "name = \"x\"\nbogus = 1\n[[models]]\nmodel = \"m\"\ndataset = \"d\"\n",
        )
        .unwrap();
        let e = Experiment::load(&p).unwrap_err().to_string();
        assert!(e.contains("e.toml") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn blip_entries_name_easy_vqa_and_join_caption_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.toml");
        std::fs::write(
            &p,
            "name = \"x\"\n[[models]]\nmodel = \"blip-easyvqa\"\ndataset = \"easy-vqa:test\"\n\
             [[models]]\nmodel = \"b\"\ndataset = \"q.jsonl\"\ncaptions = \"c.jsonl\"\nlatency_samples = 7\n",
        )
        .unwrap();
        let e = Experiment::load(&p).unwrap();
        assert_eq!(e.models[0].dataset, Path::new(EASY_VQA_TEST));
        assert_eq!(e.models[0].latency_samples, 100);
        assert_eq!(e.models[1].captions, Some(dir.path().join("c.jsonl")));
        assert_eq!(e.models[1].latency_samples, 7);
    }

    #[test]
    fn the_default_experiment_loads() {
        let e = Experiment::load(Path::new("quantbench.toml")).unwrap();
        let models: Vec<&str> = e.models.iter().map(|m| m.model.as_str()).collect();
        assert_eq!(
            models,
            ["whisper-tiny.en", "blip-easyvqa", "blip-base-shape"]
        );
        let blip = &e.models[1];
        assert_eq!(blip.variants(), ["fp32", "seed"]);
        assert_eq!(blip.static_params.calibration_size, 300);
        assert_eq!(blip.thresholds.max_accuracy_drop_points, Some(0.5));
    }
}
