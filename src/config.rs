//! The experiment file (TOML), parsed into typed values and checked when it loads: every variant, threshold
//! and series is known before anything runs. Plain data: nothing here knows the engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::quant::{IgnoredScope, Recipe, StaticOverrides};
use crate::results::Kind;

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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MeasureConfig {
    /// Unmeasured rounds before each latency series.
    pub warmup: usize,
    /// Measured rounds of the encoder call and of the decoder step.
    pub runs: usize,
    /// Self-attention cache length for the decoder-step measurement (tokens already decoded).
    pub decoder_cache_len: usize,
    /// Passes over the dataset for end-to-end latency.
    pub e2e_passes: usize,
    /// A warning when a series' 95 % CI half-width exceeds this share of its median.
    pub max_ci_share: f64,
    /// Keep adding rounds until every CI is within `max_ci_share`, or `max_seconds` is spent.
    pub adaptive: bool,
    /// Time budget of the adaptive rounds, per model entry.
    pub max_seconds: f64,
    /// Stop at the first dataset item that fails (audio that does not decode, an image that does not
    /// load); by default the item is recorded as failed in its row and left out.
    pub stop_on_error: bool,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        MeasureConfig {
            warmup: 3,
            runs: 20,
            decoder_cache_len: 32,
            e2e_passes: 2,
            max_ci_share: 0.02,
            adaptive: false,
            max_seconds: 600.0,
            stop_on_error: false,
        }
    }
}

/// A variant of a model: the FP32 baseline or an INT8 recipe. Parsed at load, so a typo fails first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    Fp32,
    Recipe(Recipe),
}

impl Variant {
    pub const BASELINE: &'static str = "fp32";

    pub fn parse(text: &str) -> Result<Variant, String> {
        if text == Self::BASELINE {
            return Ok(Variant::Fp32);
        }
        Recipe::parse(text).map(Variant::Recipe).map_err(|_| {
            format!("unknown variant `{text}` (known: fp32, dynamic, static, weights, seed, fused)")
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Fp32 => Self::BASELINE,
            Variant::Recipe(r) => r.name(),
        }
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Variant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Variant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Variant::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Built-in name or path to a model folder.
    pub model: String,
    /// What the model is, decided at load from the model itself (a BLIP folder or built-in, else Whisper).
    #[serde(skip_deserializing, default = "whisper")]
    pub kind: Kind,
    /// Speech manifest (Whisper) or VQA manifest (BLIP), relative to the experiment file; `easy-vqa:test`
    /// is easy-VQA's test split, prepared in the cache.
    pub dataset: PathBuf,
    /// BLIP: caption manifest (default: easy-VQA's test captions with `easy-vqa:test`, else none).
    #[serde(default)]
    pub captions: Option<PathBuf>,
    /// BLIP: samples whose vision, answer and caption latency are measured (the first N of each manifest).
    #[serde(default = "default_latency_samples")]
    pub latency_samples: usize,
    /// Use only the first N items (0 = all).
    #[serde(default)]
    pub limit: usize,
    /// Variants to compare with FP32 (which always runs, as the baseline).
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Limits every non-FP32 variant must meet; `quantbench report` exits with code 3 when one fails.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Nodes every recipe keeps in float (by name, regex or op type).
    #[serde(default)]
    pub ignored_scope: IgnoredScope,
    /// Manifest the calibrated recipes calibrate on, relative to the experiment file (default: the
    /// bundled speech calibration set for Whisper, easy-VQA's training split for BLIP).
    #[serde(default)]
    pub calibration: Option<PathBuf>,
    /// Calibrated recipes' parameters set here; the rest are the recipe's defaults.
    #[serde(default, rename = "static")]
    pub static_params: StaticOverrides,
    /// A recipe per graph (file name without `.onnx`) for every INT8 variant, e.g.
    /// `parts = { text_decoder_with_past = "weights" }`.
    #[serde(default)]
    pub parts: BTreeMap<String, Recipe>,
    /// Whether INT8 variants are fused (attention → MultiHeadAttention, GELU → Gelu) before they are quantized.
    #[serde(default = "fusion_on")]
    pub fusion: bool,
    /// Model folders measured beside the variants, with their labels (not read from the file: the models
    /// accuracy control chooses).
    #[serde(skip)]
    pub extra_arms: Vec<(String, PathBuf)>,
    /// Quantization with accuracy control: the model it chooses is measured as variant `RECIPE-ac`.
    #[serde(default)]
    pub accuracy_control: Option<AccuracyControlConfig>,
    /// A TOML ignored scope (`names`, `patterns`, `types`) merged into `ignored_scope`, e.g. written by
    /// `quantbench sensitivity --write-scope`.
    #[serde(default)]
    pub ignored_scope_file: Option<PathBuf>,
    /// Only these series are measured (empty: every series of the kind).
    #[serde(skip)]
    pub only_series: Vec<String>,
    /// Whisper: long recordings composed from the bundled clips (a `recordings.toml`, relative to the
    /// experiment file), each transcribed whole into timed segments: the `long_form` series, WER over
    /// whole recordings, real-time factor, and INT8's segment times against FP32's.
    #[serde(default)]
    pub long_form: Option<PathBuf>,
    /// Whisper: measured transcriptions of each long recording per variant.
    #[serde(default = "default_long_form_passes")]
    pub long_form_passes: usize,
    /// Whisper: the language the speech is in (multilingual models; `en` when not set).
    #[serde(default)]
    pub language: Option<String>,
    /// Whisper: `transcribe` (default) or `translate` (into English; multilingual models only).
    #[serde(default)]
    pub task: crate::models::whisper::Task,
}

fn default_long_form_passes() -> usize {
    2
}

fn fusion_on() -> bool {
    true
}

fn whisper() -> Kind {
    Kind::Whisper
}

fn default_latency_samples() -> usize {
    100
}

/// `[models.accuracy_control]`: search for the fastest INT8 model within a drop budget on a validation set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccuracyControlConfig {
    pub recipe: Recipe,
    pub max_drop: f64,
    #[serde(default)]
    pub drop_type: crate::results::control::DropType,
    /// Speech or VQA manifest, relative to the experiment file, or `easy-vqa:train`.
    pub validate: PathBuf,
    /// The first N validation items (0 = all).
    #[serde(default)]
    pub validate_size: usize,
    #[serde(default = "default_max_reverts")]
    pub max_reverts: usize,
    #[serde(default = "default_control_seconds")]
    pub max_seconds: f64,
}

fn default_max_reverts() -> usize {
    30
}

fn default_control_seconds() -> f64 {
    3600.0
}

impl AccuracyControlConfig {
    /// The variant label its model is measured under.
    pub fn label(&self) -> String {
        format!("{}-ac", self.recipe.name())
    }
}

/// Datasets named rather than given by path.
pub const EASY_VQA_TEST: &str = "easy-vqa:test";
/// easy-VQA's training split (a validation set disjoint from the test split).
pub const EASY_VQA_TRAIN: &str = "easy-vqa:train";

/// A release gate. Every limit is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Largest allowed accuracy drop in points (WER up, VQA accuracy down).
    pub max_accuracy_drop_points: Option<f64>,
    /// Smallest allowed accuracy as a share of FP32's (MLPerf's "99 % of FP32"); for WER accuracy is
    /// 1 − WER clamped at 0.
    pub min_relative_accuracy: Option<f64>,
    /// Smallest speedup per series, e.g. `{ encoder = 2.0, end_to_end = 2.2 }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub min_speedup: BTreeMap<String, f64>,
    /// Older spellings of `min_speedup.end_to_end`, `.encoder`, `.decoder_step` (Whisper only).
    #[serde(default, skip_serializing)]
    pub min_end_to_end_speedup: Option<f64>,
    #[serde(default, skip_serializing)]
    pub min_encoder_speedup: Option<f64>,
    #[serde(default, skip_serializing)]
    pub min_decoder_step_speedup: Option<f64>,
}

impl Thresholds {
    /// Folds the older spellings into `min_speedup` and checks every series against `kind`; "key: why".
    fn normalise(&mut self, kind: Kind) -> Result<(), String> {
        for (key, series, value) in [
            (
                "min_end_to_end_speedup",
                "end_to_end",
                self.min_end_to_end_speedup.take(),
            ),
            (
                "min_encoder_speedup",
                "encoder",
                self.min_encoder_speedup.take(),
            ),
            (
                "min_decoder_step_speedup",
                "decoder_step",
                self.min_decoder_step_speedup.take(),
            ),
        ] {
            if let Some(v) = value {
                if kind.spec(series).is_none() {
                    return Err(format!(
                        "thresholds.{key}: a {} model has no `{series}` series; use min_speedup = {{ {} = {v} }} with one of its series ({})",
                        kind.name(),
                        kind.series()[1].name,
                        series_names(kind)
                    ));
                }
                self.min_speedup.insert(series.to_string(), v);
            }
        }
        for (series, v) in &self.min_speedup {
            if kind.spec(series).is_none() {
                return Err(format!(
                    "thresholds.min_speedup.{series}: a {} model has no `{series}` series (it has {})",
                    kind.name(),
                    series_names(kind)
                ));
            }
            if !(v.is_finite() && *v > 0.0) {
                return Err(format!(
                    "thresholds.min_speedup.{series}: {v} is not a positive number"
                ));
            }
        }
        for (key, v) in [
            ("max_accuracy_drop_points", self.max_accuracy_drop_points),
            ("min_relative_accuracy", self.min_relative_accuracy),
        ] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(format!("thresholds.{key}: not a finite number"));
            }
        }
        Ok(())
    }
}

fn series_names(kind: Kind) -> String {
    kind.series()
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ModelEntry {
    /// The variants to run, FP32 first (the baseline every other row is compared with).
    /// An entry measuring `model` alone on `dataset`, every other setting at its default.
    pub fn new(model: &str, kind: Kind, dataset: PathBuf) -> Self {
        ModelEntry {
            model: model.to_string(),
            kind,
            dataset,
            captions: None,
            latency_samples: default_latency_samples(),
            limit: 0,
            variants: Vec::new(),
            thresholds: Thresholds::default(),
            ignored_scope: IgnoredScope::default(),
            calibration: None,
            static_params: StaticOverrides::default(),
            parts: BTreeMap::new(),
            fusion: true,
            extra_arms: Vec::new(),
            accuracy_control: None,
            ignored_scope_file: None,
            only_series: Vec::new(),
            long_form: None,
            long_form_passes: default_long_form_passes(),
            language: None,
            task: Default::default(),
        }
    }

    /// Whether `series` is measured.
    pub fn measures(&self, series: &str) -> bool {
        self.only_series.is_empty() || self.only_series.iter().any(|s| s == series)
    }

    pub fn variants(&self) -> Vec<Variant> {
        let mut v = vec![Variant::Fp32];
        for x in &self.variants {
            if !v.contains(x) {
                v.push(*x);
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
        Self::parse(path, &text)
    }

    /// An experiment from its text; `path` names it in errors and anchors its relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let err = |what: String| ConfigError {
            path: path.to_path_buf(),
            what,
        };
        let mut exp: Experiment = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text.get(..s.start).map_or(1, |t| t.lines().count().max(1)));
            let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
            err(format!("invalid experiment{at}: {}", e.message().trim()))
        })?;
        if exp.models.is_empty() {
            return Err(err("no [[models]] to run".into()));
        }
        exp.measure.check().map_err(|what| {
            let key = what.split(':').next().unwrap_or_default();
            err(with_line(text, "[measure]", 0, key, what.clone()))
        })?;
        if exp.name.is_empty() || exp.name.contains(['/', '\\']) {
            return Err(err(format!(
                "name `{}` must be non-empty and contain no path separators",
                exp.name
            )));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for (i, m) in exp.models.iter_mut().enumerate() {
            let at = |what: String| {
                let key = what.split(':').next().unwrap_or_default().to_string();
                err(with_line(
                    text,
                    "[[models]]",
                    i,
                    &key,
                    format!("[[models]] #{} ({}): {what}", i + 1, m.model),
                ))
            };
            if m.dataset.is_relative() && m.dataset != Path::new(EASY_VQA_TEST) {
                m.dataset = base.join(&m.dataset);
            }
            if let Some(c) = m.captions.as_mut().filter(|c| c.is_relative()) {
                *c = base.join(&*c);
            }
            if let Some(c) = m.calibration.as_mut().filter(|c| c.is_relative()) {
                *c = base.join(&*c);
            }
            if let Some(c) = m.long_form.as_mut().filter(|c| c.is_relative()) {
                *c = base.join(&*c);
            }
            if let Some(ac) = m.accuracy_control.as_mut() {
                if ac.validate.is_relative() && ac.validate != Path::new(EASY_VQA_TRAIN) {
                    ac.validate = base.join(&ac.validate);
                }
                if ac.recipe == Recipe::Fused {
                    return Err(at(
                        "accuracy_control.recipe: `fused` quantizes nothing; give an INT8 recipe"
                            .into(),
                    ));
                }
                if !ac.max_drop.is_finite() || ac.max_drop < 0.0 {
                    return Err(at("accuracy_control.max_drop: must be a number ≥ 0".into()));
                }
                if ac.max_seconds <= 0.0 {
                    return Err(at("accuracy_control.max_seconds: must be above 0".into()));
                }
            }
            if let Some(f) = m.ignored_scope_file.clone() {
                let f = if f.is_relative() { base.join(f) } else { f };
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| at(format!("ignored_scope_file {}: {e}", f.display())))?;
                let scope: IgnoredScope = toml::from_str(&text).map_err(|e| {
                    at(format!(
                        "ignored_scope_file {}: {}",
                        f.display(),
                        e.message().trim()
                    ))
                })?;
                m.ignored_scope.names.extend(scope.names);
                m.ignored_scope.patterns.extend(scope.patterns);
                m.ignored_scope.types.extend(scope.types);
                m.ignored_scope_file = Some(f);
            }
            m.kind = crate::models::kind_of(&m.model);
            let kind = m.kind;
            m.thresholds.normalise(kind).map_err(&at)?;
            if let Some(p) = m.static_params.problems().into_iter().next() {
                return Err(at(format!("static.{p}")));
            }
            let no_captions = m.captions.is_none() && m.dataset != Path::new(EASY_VQA_TEST);
            if kind == Kind::Blip && no_captions && m.thresholds.min_speedup.contains_key("caption")
            {
                return Err(at(
                    "thresholds.min_speedup.caption: this entry has no caption manifest, so no caption series (set captions = \"…\")"
                        .into(),
                ));
            }
            if kind == Kind::Whisper && m.captions.is_some() {
                return Err(at(
                    "captions: a Whisper model has no caption series (captions belong to BLIP entries)"
                        .into(),
                ));
            }
            if kind == Kind::Blip
                && (m.long_form.is_some() || m.language.is_some() || m.task != Default::default())
            {
                return Err(at(
                    "long_form, language and task belong to Whisper entries (a BLIP model has no speech)"
                        .into(),
                ));
            }
            if m.long_form_passes == 0 || m.long_form_passes > 100 {
                return Err(at("long_form_passes: must be between 1 and 100".into()));
            }
            if kind == Kind::Whisper
                && m.long_form.is_none()
                && m.thresholds.min_speedup.contains_key("long_form")
            {
                return Err(at(
                    "thresholds.min_speedup.long_form: this entry has no long-form recordings, so no long_form series (set long_form = \"…/recordings.toml\")"
                        .into(),
                ));
            }
            if m.latency_samples == 0 {
                return Err(at("latency_samples: must be at least 1".into()));
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

/// `what`, prefixed with the line of the file that sets `key` (a dotted path such as `measure.runs` or
/// `static.smooth_quant.encoder`) in the `occurrence`-th table headed `table`, when it can be found.
fn with_line(text: &str, table: &str, occurrence: usize, key: &str, what: String) -> String {
    let parts: Vec<&str> = key.split('.').filter(|p| !p.is_empty()).collect();
    let mut seen = 0usize;
    let mut inside = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            if line == table {
                inside = seen == occurrence;
                seen += 1;
            } else if !line.starts_with(&format!("[{}", table.trim_matches(['[', ']']))) {
                inside = false;
            }
            continue;
        }
        let sets = |k: &str| {
            line.strip_prefix(k)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        };
        if inside && parts.iter().rev().any(|k| sets(k)) {
            return format!("line {}: {what}", n + 1);
        }
    }
    what
}

impl MeasureConfig {
    /// Every value in its range, as "measure.key: why".
    pub fn check(&self) -> Result<(), String> {
        let bad = |key: &str, why: &str| Err(format!("measure.{key}: {why}"));
        if self.runs == 0 || self.runs > 100_000 {
            return bad("runs", "must be between 1 and 100000");
        }
        if self.e2e_passes == 0 || self.e2e_passes > 1000 {
            return bad("e2e_passes", "must be between 1 and 1000");
        }
        if self.warmup > 10_000 {
            return bad("warmup", "must be at most 10000");
        }
        if self.decoder_cache_len > 4096 {
            return bad("decoder_cache_len", "must be at most 4096 tokens");
        }
        if !(self.max_ci_share > 0.0 && self.max_ci_share < 1.0) {
            return bad(
                "max_ci_share",
                "must be a share between 0 and 1 (0.02 = 2 %)",
            );
        }
        if !(self.max_seconds.is_finite() && self.max_seconds > 0.0) {
            return bad("max_seconds", "must be a positive number of seconds");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Experiment, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.toml");
        std::fs::write(&p, text).unwrap();
        Experiment::load(&p).map_err(|e| e.to_string())
    }

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
        assert_eq!(e.measure.max_ci_share, 0.02);
        assert_eq!(e.models[0].dataset, dir.path().join("d/m.jsonl"));
        assert_eq!(e.models[0].kind, Kind::Whisper);
        let e = load("name = \"x\"\nmodels = []\n").unwrap_err();
        assert!(e.contains("no [[models]]"), "{e}");
        let e = load("name = \"x\"\nbogus = 1\n[[models]]\nmodel = \"m\"\ndataset = \"d\"\n")
            .unwrap_err();
        assert!(e.contains("e.toml") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn a_variant_typo_fails_at_load() {
        let e = load("name = \"x\"\n[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"d\"\nvariants = [\"statc\"]\n")
            .unwrap_err();
        assert!(
            e.contains("line 5") && e.contains("unknown variant `statc`"),
            "{e}"
        );
    }

    #[test]
    fn thresholds_a_kind_does_not_have_are_refused() {
        let blip =
            "name = \"x\"\n[[models]]\nmodel = \"blip-easyvqa\"\ndataset = \"easy-vqa:test\"\n";
        let e = load(&format!(
            "{blip}thresholds = {{ min_end_to_end_speedup = 2.0 }}\n"
        ))
        .unwrap_err();
        assert!(
            e.contains("thresholds.min_end_to_end_speedup") && e.contains("no `end_to_end` series"),
            "{e}"
        );
        let e = load(&format!(
            "{blip}thresholds = {{ min_speedup = {{ encoder = 2.0 }} }}\n"
        ))
        .unwrap_err();
        assert!(
            e.contains("min_speedup.encoder") && e.contains("vision, vqa, caption"),
            "{e}"
        );
        let ok = load(&format!(
            "{blip}thresholds = {{ min_speedup = {{ vqa = 2.0 }} }}\n"
        ))
        .unwrap();
        assert_eq!(ok.models[0].kind, Kind::Blip);
        assert_eq!(ok.models[0].thresholds.min_speedup["vqa"], 2.0);
        // Whisper's older spellings fold into min_speedup.
        let w = load("name = \"x\"\n[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"d\"\nthresholds = { min_encoder_speedup = 1.5 }\n")
            .unwrap();
        assert_eq!(w.models[0].thresholds.min_speedup["encoder"], 1.5);
    }

    #[test]
    fn long_form_language_and_task_are_whisper_settings() {
        let whisper = "name = \"x\"\n[[models]]\nmodel = \"whisper-base\"\ndataset = \"d\"\n";
        let ok = load(&format!(
            "{whisper}long_form = \"long/recordings.toml\"\nlanguage = \"de\"\ntask = \"translate\"\nthresholds = {{ min_speedup = {{ long_form = 1.5 }} }}\n"
        ))
        .unwrap();
        let m = &ok.models[0];
        assert!(m
            .long_form
            .as_ref()
            .unwrap()
            .ends_with("long/recordings.toml"));
        assert!(m.long_form.as_ref().unwrap().is_absolute());
        assert_eq!(m.long_form_passes, 2);
        assert_eq!(m.language.as_deref(), Some("de"));
        assert_eq!(m.task, crate::models::whisper::Task::Translate);
        let e = load(&format!("{whisper}task = \"summarise\"\n")).unwrap_err();
        assert!(e.contains("unknown variant `summarise`"), "{e}");
        let e = load(&format!(
            "{whisper}long_form = \"r.toml\"\nlong_form_passes = 0\n"
        ))
        .unwrap_err();
        assert!(e.contains("long_form_passes"), "{e}");
        let e = load(&format!(
            "{whisper}thresholds = {{ min_speedup = {{ long_form = 1.5 }} }}\n"
        ))
        .unwrap_err();
        assert!(e.contains("no long-form recordings"), "{e}");
        let blip =
            "name = \"x\"\n[[models]]\nmodel = \"blip-easyvqa\"\ndataset = \"easy-vqa:test\"\n";
        let e = load(&format!("{blip}long_form = \"r.toml\"\n")).unwrap_err();
        assert!(e.contains("belong to Whisper entries"), "{e}");
    }

    #[test]
    fn out_of_range_settings_name_their_key() {
        let e = load("name = \"x\"\n[measure]\nmax_ci_share = 2.0\n[[models]]\nmodel = \"m\"\ndataset = \"d\"\n").unwrap_err();
        assert!(e.contains("measure.max_ci_share"), "{e}");
        let e =
            load("name = \"x\"\n[measure]\nruns = 0\n[[models]]\nmodel = \"m\"\ndataset = \"d\"\n")
                .unwrap_err();
        assert!(e.contains("measure.runs"), "{e}");
        let e = load("name = \"x\"\n[[models]]\nmodel = \"m\"\ndataset = \"d\"\n[models.static]\nsmooth_quant = { encoder = 7.0 }\n").unwrap_err();
        assert!(e.contains("static.smooth_quant.encoder"), "{e}");
    }

    #[test]
    fn blip_entries_name_easy_vqa_and_join_caption_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.toml");
        std::fs::write(
            &p,
            "name = \"x\"\n[[models]]\nmodel = \"blip-easyvqa\"\ndataset = \"easy-vqa:test\"\n\
             [[models]]\nmodel = \"blip-base-shape\"\ndataset = \"q.jsonl\"\ncaptions = \"c.jsonl\"\nlatency_samples = 7\n",
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
        assert_eq!(
            blip.variants(),
            [Variant::Fp32, Variant::Recipe(Recipe::Seed)]
        );
        assert_eq!(
            blip.static_params.params_for(Recipe::Seed).calibration_size,
            300
        );
        assert_eq!(blip.thresholds.max_accuracy_drop_points, Some(0.5));
    }

    #[test]
    fn an_ignored_scope_file_merges_and_accuracy_control_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("scope.toml"), "names = [\"a/MatMul\"]\n").unwrap();
        let p = dir.path().join("e.toml");
        std::fs::write(
            &p,
            "name = \"t\"\n[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"d.jsonl\"\nignored_scope_file = \"scope.toml\"\n[models.ignored_scope]\nnames = [\"b/MatMul\"]\n[models.accuracy_control]\nrecipe = \"static\"\nmax_drop = 0.3\nvalidate = \"v.jsonl\"\n",
        )
        .unwrap();
        let e = Experiment::load(&p).unwrap();
        let m = &e.models[0];
        assert_eq!(m.ignored_scope.names, ["b/MatMul", "a/MatMul"]);
        let ac = m.accuracy_control.as_ref().unwrap();
        assert_eq!(ac.validate, dir.path().join("v.jsonl"));
        assert_eq!((ac.max_reverts, ac.label()), (30, "static-ac".to_string()));
        let bad = load("name = \"t\"\n[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"d.jsonl\"\n[models.accuracy_control]\nrecipe = \"static\"\nmax_drop = -1\nvalidate = \"v.jsonl\"\n")
            .unwrap_err();
        assert!(bad.contains("accuracy_control.max_drop"), "{bad}");
        let missing = load("name = \"t\"\n[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"d.jsonl\"\nignored_scope_file = \"nope.toml\"\n")
            .unwrap_err();
        assert!(missing.contains("nope.toml"), "{missing}");
    }
}
