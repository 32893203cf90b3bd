//! INT8 quantization of ONNX graphs, in Rust. One public door: `quantize_folder` rewrites every graph of a
//! model folder with a recipe and says what it did; callers verify the result with ORT before publishing it.

pub mod absorb;
pub mod calib;
pub mod fuse;
mod graph;
mod int8;
pub mod lower;
pub mod nbits;
mod nested;
pub mod observe;
mod qdq;
pub mod qmath;
pub mod sensitivity;
pub mod smooth;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::onnx::proto::{tensor_proto::DataLocation, tensor_proto::DataType, TensorProto};
use crate::onnx::{read_model, write_model};

#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error(transparent)]
    Onnx(#[from] crate::onnx::OnnxIoError),
    #[error("model has no graph")]
    NoGraph,
    #[error("{0}")]
    Tensor(String),
    #[error("{path}: uses external data files (tensor `{tensor}`); quantbench needs self-contained .onnx files under 2 GB")]
    ExternalData { path: PathBuf, tensor: String },
    #[error("{0}: no quantizable operation (no MatMul with a constant weight); nothing written")]
    NothingToQuantize(PathBuf),
    #[error(
        "{0}: no chain of ops the fusions know (no scaled dot-product attention); nothing written"
    )]
    NothingToFuse(PathBuf),
    #[error("ignored scope: {0}")]
    Scope(String),
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("unknown recipe `{0}` (known: dynamic, static, weights, seed, fused)")]
    UnknownRecipe(String),
    #[error("{path}: {what}")]
    Io { path: PathBuf, what: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recipe {
    /// Weights int8 per output channel (symmetric), activations quantized at run time (uint8, per tensor).
    Dynamic,
    /// Data-free weight compression: int8 weights dequantized to float before each MatMul.
    Weights,
    /// QDQ with activation ranges from calibration (transformer preset, SmoothQuant, bias correction).
    Static,
    /// The seed notebooks' recipe: static everywhere but the text decoder of a BLIP, whose weights alone are
    /// compressed (quantizing its activations "leads to significant accuracy loss").
    Seed,
    /// FP32 with the fusions alone (no quantization): separates what fusion gives from what INT8 gives.
    Fused,
}

impl Recipe {
    pub fn parse(s: &str) -> Result<Self, QuantError> {
        match s {
            "dynamic" => Ok(Recipe::Dynamic),
            "weights" => Ok(Recipe::Weights),
            "static" => Ok(Recipe::Static),
            "seed" => Ok(Recipe::Seed),
            "fused" => Ok(Recipe::Fused),
            _ => Err(QuantError::UnknownRecipe(s.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Recipe::Dynamic => "dynamic",
            Recipe::Weights => "weights",
            Recipe::Static => "static",
            Recipe::Seed => "seed",
            Recipe::Fused => "fused",
        }
    }

    pub fn needs_calibration(self) -> bool {
        matches!(self, Recipe::Static | Recipe::Seed)
    }

    /// The recipe a graph file gets: Seed splits into static and weight-only by part.
    pub fn for_file(self, file: &str) -> Recipe {
        match self {
            Recipe::Seed if file.starts_with("text_decoder") => Recipe::Weights,
            Recipe::Seed => Recipe::Static,
            r => r,
        }
    }

    /// The parameters recorded with every output.
    pub fn parameters(self) -> serde_json::Value {
        match self {
            Recipe::Seed => serde_json::json!({
                "parts": "static for the vision model, the text encoder and every Whisper graph; weights for a BLIP text decoder",
                "static": Recipe::Static.parameters(),
                "weights": Recipe::Weights.parameters(),
            }),
            Recipe::Static => serde_json::json!({
                "weights": "int8, symmetric, per output channel (scale = max|w| / 127), stored as uint8 with zero point 128 (ONNX Runtime's u8·u8 kernel: no int16 saturation on CPUs without VNNI)",
                "activations": "uint8, asymmetric, per tensor, range from calibration (QuantizeLinear)",
                "preset": "transformer: only MatMuls with a constant weight are quantized; attention score/context MatMuls, Softmax, LayerNorm, GELU and residual Adds stay float",
                "ops": ["MatMul with a constant 2-D weight", "Gather from a constant 2-D table (axis 0)"],
                "embeddings": "int8 rows, symmetric, one scale per row; dequantized after the lookup",
                "vocabulary_projection": nbits::DESCRIPTION,
            }),
            Recipe::Dynamic => serde_json::json!({
                "weights": "int8, symmetric, per output channel (scale = max|w| / 127), stored as uint8 with zero point 128 (ONNX Runtime's u8·u8 kernel: no int16 saturation on CPUs without VNNI)",
                "activations": "uint8, asymmetric, per tensor, computed at run time (DynamicQuantizeLinear)",
                "ops": ["MatMul with a constant 2-D weight", "Gather from a constant 2-D table (axis 0)"],
                "embeddings": "int8 rows, symmetric, one scale per row; dequantized after the lookup",
                "vocabulary_projection": nbits::DESCRIPTION,
            }),
            Recipe::Fused => serde_json::json!({
                "weights": "float, unchanged",
                "activations": "float (not quantized)",
            }),
            Recipe::Weights => serde_json::json!({
                "weights": "int8, symmetric, per output channel; DequantizeLinear (axis 1) before a float MatMul",
                "activations": "float (not quantized)",
                "ops": ["MatMul with a constant 2-D weight", "Gather from a constant 2-D table (axis 0)"],
                "embeddings": "int8 rows, symmetric, one scale per row; dequantized after the lookup",
            }),
        }
    }
}

/// Nodes kept in float: by exact node name, by regular expression on the name, or by op type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoredScope {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub types: Vec<String>,
}

impl IgnoredScope {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.patterns.is_empty() && self.types.is_empty()
    }

    fn matcher(&self) -> Result<impl Fn(&crate::onnx::proto::NodeProto) -> bool + '_, QuantError> {
        let regexes = self
            .patterns
            .iter()
            .map(|p| {
                regex::Regex::new(p)
                    .map_err(|e| QuantError::Scope(format!("invalid pattern `{p}`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(move |n: &crate::onnx::proto::NodeProto| {
            self.names.iter().any(|x| x == n.name())
                || self.types.iter().any(|t| t == n.op_type())
                || regexes.iter().any(|r| r.is_match(n.name()))
        })
    }
}

/// SmoothQuant's migration strength per model part: the encoder side (Whisper's `encoder*` graphs, BLIP's
/// vision model and text encoder) and the decoder side (the other graphs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmoothAlpha {
    #[serde(default)]
    pub encoder: Option<f32>,
    #[serde(default)]
    pub decoder: Option<f32>,
}

impl SmoothAlpha {
    /// α for a graph file; `None` leaves that part unsmoothed.
    pub fn for_file(&self, file: &str) -> Option<f32> {
        if ["encoder", "vision_model", "text_encoder"]
            .iter()
            .any(|p| file.starts_with(p))
        {
            self.encoder
        } else {
            self.decoder
        }
    }
}

/// Parameters of the static recipe (ignored by the others).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticParams {
    /// Activation range estimator: `minmax`, `percentile:P` or `mse`.
    #[serde(with = "estimator_text")]
    pub estimator: calib::Estimator,
    /// SmoothQuant α per part; absent = no smoothing.
    pub smooth_quant: Option<SmoothAlpha>,
    pub bias_correction: bool,
    /// How many calibration clips are used (a seeded choice from the calibration manifest).
    pub calibration_size: usize,
    pub seed: u64,
}

impl StaticParams {
    /// The seed's BLIP recipe: 300 calibration samples and SmoothQuant (α 0.5) on the vision model and the
    /// text encoder.
    pub fn seed() -> Self {
        StaticParams {
            smooth_quant: Some(SmoothAlpha {
                encoder: Some(0.5),
                decoder: None,
            }),
            calibration_size: 300,
            ..Default::default()
        }
    }
}

impl Recipe {
    /// The parameters a recipe gets when nothing overrides them: the one place a recipe's defaults live
    /// (`quantize`, `eval`, `transcribe` and experiments all start here). `seed` is the seed notebooks'
    /// recipe: 300 calibration items and SmoothQuant α 0.5 on the encoder side; the others calibrate on 30
    /// items without smoothing. Both use the MSE estimator and bias correction, seed 0.
    pub fn default_params(self) -> StaticParams {
        match self {
            Recipe::Seed => StaticParams::seed(),
            _ => StaticParams::default(),
        }
    }
}

/// Parameters set explicitly (an experiment's `[models.static]`, `quantize`'s flags); the rest come from
/// the recipe's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticOverrides {
    #[serde(
        default,
        with = "estimator_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub estimator: Option<calib::Estimator>,
    /// `{}` turns smoothing off; absent keeps the recipe's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smooth_quant: Option<SmoothAlpha>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_correction: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl StaticOverrides {
    /// `recipe`'s defaults with these overrides applied.
    pub fn params_for(&self, recipe: Recipe) -> StaticParams {
        let d = recipe.default_params();
        StaticParams {
            estimator: self.estimator.unwrap_or(d.estimator),
            smooth_quant: match self.smooth_quant {
                Some(a) if a.encoder.is_none() && a.decoder.is_none() => None,
                Some(a) => Some(a),
                None => d.smooth_quant,
            },
            bias_correction: self.bias_correction.unwrap_or(d.bias_correction),
            calibration_size: self.calibration_size.unwrap_or(d.calibration_size),
            seed: self.seed.unwrap_or(d.seed),
        }
    }

    /// Values outside their range, as "key: why".
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(a) = self.smooth_quant {
            for (side, v) in [("encoder", a.encoder), ("decoder", a.decoder)] {
                if let Some(v) = v.filter(|v| !(0.0..=1.0).contains(v)) {
                    out.push(format!("smooth_quant.{side}: α {v} is outside [0, 1]"));
                }
            }
        }
        if self.calibration_size == Some(0) {
            out.push("calibration_size: must be at least 1".into());
        }
        out
    }
}

mod estimator_opt {
    use super::calib::Estimator;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(e: &Option<Estimator>, s: S) -> Result<S::Ok, S::Error> {
        match e {
            Some(e) => s.serialize_str(&e.label()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Estimator>, D::Error> {
        let text = String::deserialize(d)?;
        Estimator::parse(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

impl Default for StaticParams {
    fn default() -> Self {
        StaticParams {
            // Chosen by measurement on tiny.en (see the README): SmoothQuant at the seed's α raised WER here.
            estimator: calib::Estimator::Mse,
            smooth_quant: None,
            bias_correction: true,
            calibration_size: 30,
            seed: 0,
        }
    }
}

mod estimator_text {
    use super::calib::Estimator;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(e: &Estimator, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&e.label())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Estimator, D::Error> {
        let text = String::deserialize(d)?;
        Estimator::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A recipe, its parameters and the nodes it must leave alone.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantOptions {
    pub recipe: Recipe,
    pub ignored: IgnoredScope,
    pub params: StaticParams,
    /// A recipe per graph (file name without `.onnx`), overriding `recipe` for that part.
    pub parts: BTreeMap<String, Recipe>,
    /// Whether the graphs are fused (`fuse`) before they are quantized; on unless `--no-fusion`.
    pub fusion: bool,
}

impl From<Recipe> for QuantOptions {
    fn from(recipe: Recipe) -> Self {
        QuantOptions {
            recipe,
            ignored: IgnoredScope::default(),
            params: StaticParams::default(),
            parts: BTreeMap::new(),
            fusion: true,
        }
    }
}

impl QuantOptions {
    /// The recipe graph `file` gets: its own from `parts`, else the variant's (split by part for `seed`).
    pub fn recipe_for(&self, file: &str) -> Recipe {
        let part = file.trim_end_matches(".onnx");
        self.parts
            .get(part)
            .copied()
            .unwrap_or(self.recipe)
            .for_file(file)
    }

    pub fn needs_calibration(&self) -> bool {
        self.recipe.needs_calibration() || self.parts.values().any(|r| r.needs_calibration())
    }

    /// Everything that determines the output, as recorded in the sidecar (and hashed into cache names).
    pub fn parameters(&self) -> serde_json::Value {
        let mut p = self.recipe.parameters();
        if self.needs_calibration() {
            p["static"] = serde_json::to_value(&self.params).expect("params serialise");
        }
        if !self.parts.is_empty() {
            p["parts"] = serde_json::to_value(&self.parts).expect("parts serialise");
        }
        p["fusion"] = if self.fusion {
            serde_json::json!(format!(
                "{}; {}; in the int8 recipes also {}",
                fuse::DESCRIPTION,
                absorb::DESCRIPTION,
                lower::DESCRIPTION
            ))
        } else {
            serde_json::json!(false)
        };
        p
    }
}

/// Activation statistics per graph file, from running the float model on a calibration set.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    pub stats: BTreeMap<String, HashMap<String, calib::TensorStats>>,
    pub sha256: String,
    pub clips: usize,
    /// What SmoothQuant did to each graph before the statistics were taken.
    pub smoothing: BTreeMap<String, smooth::SmoothReport>,
    /// The original float folder, when the folder being quantized is its smoothed copy.
    pub origin: Option<PathBuf>,
    /// Time the calibration (and smoothing) took; counted in the sidecar's total.
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCount {
    pub quantized: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartSummary {
    pub file: String,
    /// The recipe this graph got (parts differ under `seed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Recipe>,
    pub ops: BTreeMap<String, OpCount>,
    pub left_in_float: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoothing: Option<smooth::SmoothReport>,
    /// MatMuls whose bias absorbed the mean shift of weight rounding (static recipe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_corrected: Option<usize>,
    /// Chains replaced by a fused contrib op, counted by that op.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fusions: fuse::Fusions,
}

impl PartSummary {
    /// The fused ops as "4 × MultiHeadAttention", or `None` when nothing was fused.
    pub fn fusions_text(&self) -> Option<String> {
        (!self.fusions.is_empty()).then(|| {
            self.fusions
                .iter()
                .map(|(op, n)| format!("{n} × {op}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// The JSON sidecar written next to the quantized graphs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuantSummary {
    pub recipe: Recipe,
    pub parameters: serde_json::Value,
    #[serde(default)]
    pub ignored_scope: IgnoredScope,
    pub calibration_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_clips: Option<usize>,
    pub source: String,
    pub parts: Vec<PartSummary>,
    pub seconds: f64,
    pub quantbench_version: String,
}

pub const SIDECAR_FILE: &str = "quantization.json";

/// Values of a float initializer, from raw_data or float_data, checked against its declared shape.
pub(crate) fn float_data(t: &TensorProto) -> Result<Vec<f32>, QuantError> {
    if t.data_type() != DataType::Float as i32 {
        return Err(QuantError::Tensor(format!(
            "initializer `{}` is not float",
            t.name()
        )));
    }
    let values: Vec<f32> = match &t.raw_data {
        Some(raw) if raw.len() % 4 != 0 => {
            return Err(QuantError::Tensor(format!(
                "initializer `{}` has a ragged raw_data",
                t.name()
            )))
        }
        Some(raw) => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        None => t.float_data.clone(),
    };
    let expected: i64 = t.dims.iter().product();
    if values.len() as i64 != expected {
        return Err(QuantError::Tensor(format!(
            "initializer `{}` holds {} values for shape {:?}",
            t.name(),
            values.len(),
            t.dims
        )));
    }
    Ok(values)
}

fn io_err(path: &Path, e: std::io::Error) -> QuantError {
    QuantError::Io {
        path: path.to_path_buf(),
        what: e.to_string(),
    }
}

/// Reads a graph and refuses external data.
fn read_graph(path: &Path) -> Result<crate::onnx::proto::ModelProto, QuantError> {
    let model = read_model(path)?;
    if let Some(t) = model.graph.as_ref().and_then(|g| {
        g.initializer
            .iter()
            .find(|t| t.data_location() == DataLocation::External)
    }) {
        return Err(QuantError::ExternalData {
            path: path.to_path_buf(),
            tensor: t.name().to_string(),
        });
    }
    Ok(model)
}

/// Copies every file of `src` that is not an ONNX graph, a quantization sidecar or hidden (a cache
/// record describes its own folder only) into `dst`.
fn copy_other_files(src: &Path, dst: &Path) -> Result<(), QuantError> {
    for entry in std::fs::read_dir(src)
        .map_err(|e| io_err(src, e))?
        .flatten()
    {
        let p = entry.path();
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if p.is_file() && name != SIDECAR_FILE && !text.ends_with(".onnx") && !text.starts_with('.')
        {
            std::fs::copy(&p, dst.join(&name)).map_err(|e| io_err(&p, e))?;
        }
    }
    Ok(())
}

/// Runs `work` on every graph file at once, a thread each (the graphs are independent); results in
/// `files`' order. `doing` names the work in the error a panicking thread becomes.
fn each_file<T: Send>(
    files: &[&str],
    doing: &str,
    work: impl Fn(&str) -> Result<T, QuantError> + Sync,
) -> Vec<Result<T, QuantError>> {
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .iter()
            .map(|file| scope.spawn(move || work(file)))
            .collect();
        workers
            .into_iter()
            .zip(files)
            .map(|(w, file)| {
                w.join()
                    .unwrap_or_else(|_| Err(QuantError::Tensor(format!("{doing} {file} panicked"))))
            })
            .collect()
    })
}

/// Writes `src`'s graphs into `dst` with the activations a static recipe quantizes exposed as outputs
/// (named `observe::PREFIX` + tensor); returns, per file, the observed tensors and their channel counts.
/// The graphs are first fused and lowered as they will be when quantized (`prepare_part`): the float
/// model then runs faster, fusion keeps the names of the tensors observed, and a lowered convolution's
/// columns are observed like any MatMul's input.
pub fn instrument_folder(
    src: &Path,
    dst: &Path,
    graph_files: &[&str],
    options: &QuantOptions,
) -> Result<BTreeMap<String, Vec<(String, usize)>>, QuantError> {
    let matcher = options.ignored.matcher()?;
    let matcher = &matcher;
    let instrumented = each_file(graph_files, "instrumenting", |file| {
        let mut model = read_graph(&src.join(file))?;
        prepare_part(&mut model, file, options, matcher)?;
        let acts = observe::instrument(&mut model, matcher)?;
        write_model(&model, &dst.join(file))?;
        Ok(acts)
    });
    let mut observed = BTreeMap::new();
    for (file, acts) in graph_files.iter().zip(instrumented) {
        observed.insert(file.to_string(), acts?);
    }
    copy_other_files(src, dst)?;
    Ok(observed)
}

/// Writes `src`'s graphs into `dst` with SmoothQuant applied from first-pass statistics.
pub fn smooth_folder(
    src: &Path,
    dst: &Path,
    graph_files: &[&str],
    stats: &BTreeMap<String, HashMap<String, calib::TensorStats>>,
    alpha: SmoothAlpha,
    ignored: &IgnoredScope,
) -> Result<BTreeMap<String, smooth::SmoothReport>, QuantError> {
    let matcher = ignored.matcher()?;
    let empty = HashMap::new();
    let mut reports = BTreeMap::new();
    for file in graph_files {
        let Some(a) = alpha.for_file(file) else {
            std::fs::copy(src.join(file), dst.join(file))
                .map_err(|e| io_err(&src.join(file), e))?;
            continue;
        };
        let mut model = read_graph(&src.join(file))?;
        let file_stats = stats.get(*file).unwrap_or(&empty);
        let report = smooth::smooth(&mut model, file_stats, a, &matcher)?;
        write_model(&model, &dst.join(file))?;
        reports.insert(file.to_string(), report);
    }
    copy_other_files(src, dst)?;
    Ok(reports)
}

/// Rewrites one graph with the recipe its part gets; returns what it did and how many biases absorbed the
/// weight rounding (static only).
fn rewrite_part(
    model: &mut crate::onnx::proto::ModelProto,
    file: &str,
    options: &QuantOptions,
    calibration: Option<&Calibration>,
    ignored: &dyn Fn(&crate::onnx::proto::NodeProto) -> bool,
) -> Result<(int8::Rewrite, Option<usize>), QuantError> {
    let empty = HashMap::new();
    let recipe = options.recipe_for(file);
    let vocabulary = if matches!(recipe, Recipe::Dynamic | Recipe::Static) {
        nbits::rewrite(model, ignored)?.len()
    } else {
        0
    };
    let (mut rewrite, corrected) = match (recipe, calibration) {
        (Recipe::Dynamic, _) => (
            int8::rewrite(model, int8::MatMulMode::Dynamic, ignored)?,
            None,
        ),
        (Recipe::Weights, _) => (
            int8::rewrite(model, int8::MatMulMode::WeightsOnly, ignored)?,
            None,
        ),
        (Recipe::Static, Some(c)) => {
            let stats = c.stats.get(file).unwrap_or(&empty);
            let (r, corrected) = qdq::rewrite(
                model,
                stats,
                options.params.estimator,
                options.params.bias_correction,
                ignored,
            )?;
            (r, Some(corrected))
        }
        (Recipe::Static, None) => {
            return Err(QuantError::Calibration(format!(
                "{file}: the static recipe needs calibration statistics"
            )))
        }
        (Recipe::Fused, _) => (int8::Rewrite::unchanged(model)?, None),
        (Recipe::Seed, _) => unreachable!("split by for_file"),
    };
    if vocabulary > 0 {
        let count = rewrite.ops.entry("MatMul".into()).or_default();
        count.quantized += vocabulary;
        count.total += vocabulary;
    }
    Ok((rewrite, corrected))
}

/// Fuses `model` (unless fusion is off) and, where `file`'s recipe quantizes activations, lowers its 1-D
/// convolutions to MatMuls; returns what was replaced. Calibration and quantization both start here, so
/// the tensors observed are the ones quantized.
fn prepare_part(
    model: &mut crate::onnx::proto::ModelProto,
    file: &str,
    options: &QuantOptions,
    ignored: &dyn Fn(&crate::onnx::proto::NodeProto) -> bool,
) -> Result<fuse::Fusions, QuantError> {
    let mut fusions = fuse::Fusions::new();
    if !options.fusion {
        return Ok(fusions);
    }
    if absorb::is_decoding_step(model) {
        let weights = if options.recipe_for(file) == Recipe::Weights {
            absorb::Weights::Int8
        } else {
            absorb::Weights::Float
        };
        let absorbed: usize = nested::each_graph(model, |m| absorb::absorb(m, weights, ignored))?
            .into_iter()
            .sum();
        if absorbed > 0 {
            fusions.insert(absorb::FUSION.into(), absorbed);
        }
    }
    for found in nested::each_graph(model, fuse::fuse)? {
        for (op, n) in found {
            *fusions.entry(op).or_default() += n;
        }
    }
    if matches!(options.recipe_for(file), Recipe::Dynamic | Recipe::Static) {
        let lowered: usize = nested::each_graph(model, |m| lower::lower_convs(m, ignored))?
            .into_iter()
            .sum();
        if lowered > 0 {
            fusions.insert(lower::FUSION.into(), lowered);
        }
    }
    Ok(fusions)
}

/// One graph, fused and rewritten, with what was done and which of the ignored scope's names it holds.
struct QuantizedPart {
    model: crate::onnx::proto::ModelProto,
    summary: PartSummary,
    named_seen: Vec<bool>,
}

fn quantize_part(
    src: &Path,
    file: &str,
    options: &QuantOptions,
    calibration: Option<&Calibration>,
    ignored: &(dyn Fn(&crate::onnx::proto::NodeProto) -> bool + Sync),
) -> Result<QuantizedPart, QuantError> {
    let mut model = read_graph(&src.join(file))?;
    let named_seen = options
        .ignored
        .names
        .iter()
        .map(|name| {
            model
                .graph
                .as_ref()
                .is_some_and(|g| graph::has_node_named(g, name))
        })
        .collect();
    let fusions = prepare_part(&mut model, file, options, ignored)?;
    let mut rewrite = int8::Rewrite::default();
    let mut bias_corrected: Option<usize> = None;
    for (r, corrected) in nested::each_graph(&mut model, |m| {
        rewrite_part(m, file, options, calibration, ignored)
    })? {
        rewrite.absorb(r);
        if let Some(c) = corrected {
            *bias_corrected.get_or_insert(0) += c;
        }
    }
    Ok(QuantizedPart {
        model,
        summary: PartSummary {
            file: file.to_string(),
            recipe: Some(options.recipe_for(file)),
            ops: rewrite.ops,
            left_in_float: rewrite.skipped,
            smoothing: calibration.and_then(|c| c.smoothing.get(file).cloned()),
            bias_corrected,
            fusions,
        },
        named_seen,
    })
}

/// Rewrites every graph file of `src` into `dst` (a fresh folder) and copies the other files. The static
/// recipe needs `calibration` (statistics taken on `src` itself).
pub fn quantize_folder(
    src: &Path,
    dst: &Path,
    graph_files: &[&str],
    options: impl Into<QuantOptions>,
    calibration: Option<&Calibration>,
    progress: &mut dyn FnMut(&str),
) -> Result<QuantSummary, QuantError> {
    let start = Instant::now();
    let options = options.into();
    let recipe = options.recipe;
    let ignored = options.ignored.matcher()?;
    if let Some(unknown) = options
        .parts
        .keys()
        .find(|p| !graph_files.contains(&format!("{p}.onnx").as_str()))
    {
        return Err(QuantError::Scope(format!(
            "no graph `{unknown}.onnx` in {} (parts: {})",
            src.display(),
            graph_files.join(", ")
        )));
    }
    let calibration = match (options.needs_calibration(), calibration) {
        (true, None) => {
            return Err(QuantError::Calibration(format!(
                "the {} recipe needs calibration statistics",
                recipe.name()
            )))
        }
        (true, Some(c)) => Some(c),
        (false, _) => None,
    };
    for file in graph_files {
        progress(&format!("quantize {file}: {} ...", recipe.name()));
    }
    let done = each_file(graph_files, "quantizing", |file| {
        quantize_part(src, file, &options, calibration, &ignored)
    });
    let mut named_seen = vec![false; options.ignored.names.len()];
    let mut parts = Vec::new();
    let mut rewritten = Vec::new();
    for (file, part) in graph_files.iter().zip(done) {
        let part = part?;
        for (seen, here) in named_seen.iter_mut().zip(&part.named_seen) {
            *seen |= here;
        }
        rewritten.push((file, part.model));
        parts.push(part.summary);
    }
    let unknown: Vec<&str> = options
        .ignored
        .names
        .iter()
        .zip(&named_seen)
        .filter(|(_, seen)| !**seen)
        .map(|(n, _)| n.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(QuantError::Scope(format!(
            "no node named {} in {}",
            unknown.join(", "),
            src.display()
        )));
    }
    let quantized: usize = parts
        .iter()
        .flat_map(|p| p.ops.values())
        .map(|c| c.quantized)
        .sum();
    let fused: usize = parts.iter().flat_map(|p| p.fusions.values()).sum();
    if recipe == Recipe::Fused && !options.fusion {
        return Err(QuantError::Scope(
            "the fused recipe is the fusions alone; it cannot be made with fusion off".into(),
        ));
    }
    if recipe == Recipe::Fused && fused == 0 {
        return Err(QuantError::NothingToFuse(src.to_path_buf()));
    }
    if quantized == 0 && recipe != Recipe::Fused {
        return Err(QuantError::NothingToQuantize(src.to_path_buf()));
    }
    for (file, model) in &rewritten {
        write_model(model, &dst.join(file))?;
    }
    copy_other_files(src, dst)?;
    let summary = QuantSummary {
        recipe,
        parameters: options.parameters(),
        ignored_scope: options.ignored.clone(),
        calibration_sha256: calibration.map(|c| c.sha256.clone()),
        calibration_clips: calibration.map(|c| c.clips),
        source: calibration
            .and_then(|c| c.origin.as_deref())
            .unwrap_or(src)
            .display()
            .to_string(),
        parts,
        seconds: start.elapsed().as_secs_f64() + calibration.map_or(0.0, |c| c.seconds),
        quantbench_version: env!("CARGO_PKG_VERSION").into(),
    };
    let text = serde_json::to_string_pretty(&summary).expect("summary serialises") + "\n";
    let sidecar = dst.join(SIDECAR_FILE);
    crate::fsutil::write_atomic(&sidecar, text.as_bytes()).map_err(|e| io_err(&sidecar, e))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::tensor_proto::DataType;
    use crate::onnx::{Dim, GraphBuilder};

    /// y = relu(x · W1) · W2 with x [2, 8], W1 [8, 16], W2 [16, 4]; plus a MatMul of two activations.
    fn small_model() -> crate::onnx::proto::ModelProto {
        let mut g = GraphBuilder::new();
        let x = g.input("x", DataType::Float, &[Dim::Named("batch"), Dim::Fixed(8)]);
        let w1: Vec<f32> = (0..128)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 10.0)
            .collect();
        let w2: Vec<f32> = (0..64)
            .map(|i| ((i * 11 % 13) as f32 - 6.0) / 7.0)
            .collect();
        let w1 = g.f32_init("w1", &[8, 16], &w1);
        let w2 = g.f32_init("w2", &[16, 4], &w2);
        let h = g.op("MatMul", &[&x, &w1], vec![]);
        let h = g.op("Relu", &[&h], vec![]);
        g.op_into("MatMul", &[&h, &w2], vec![], &["y"]);
        g.output("y", DataType::Float, &[Dim::Named("batch"), Dim::Fixed(4)]);
        g.finish("small", 17)
    }

    #[test]
    fn dynamic_rewrite_counts_ops_and_replaces_float_weights() {
        let mut m = small_model();
        let r = int8::rewrite(&mut m, int8::MatMulMode::Dynamic, &|_| false).unwrap();
        assert_eq!(
            r.ops["MatMul"],
            OpCount {
                quantized: 2,
                total: 2
            }
        );
        assert_eq!(
            r.ops["Relu"],
            OpCount {
                quantized: 0,
                total: 1
            }
        );
        let g = m.graph.unwrap();
        assert!(g
            .initializer
            .iter()
            .all(|t| t.name() != "w1" && t.name() != "w2"));
        assert_eq!(
            g.node
                .iter()
                .filter(|n| n.op_type() == "MatMulInteger")
                .count(),
            2
        );
        let q = g
            .initializer
            .iter()
            .find(|t| t.name() == "w1_quantized")
            .unwrap();
        // Symmetric int8 values stored around 128 for ONNX Runtime's non-saturating u8·u8 kernel.
        assert_eq!(q.data_type(), DataType::Uint8 as i32);
        let zp = g
            .initializer
            .iter()
            .find(|t| t.name() == "w1_zero_point")
            .unwrap();
        assert_eq!(zp.data_type(), DataType::Uint8 as i32);
        assert!(zp.raw_data().iter().all(|&z| z == 128));
    }

    #[test]
    fn weight_only_rewrite_dequantizes_weights_for_float_matmuls() {
        let mut m = small_model();
        let r = int8::rewrite(&mut m, int8::MatMulMode::WeightsOnly, &|_| false).unwrap();
        assert_eq!(r.ops["MatMul"].quantized, 2);
        let g = m.graph.unwrap();
        let count = |op: &str| g.node.iter().filter(|n| n.op_type() == op).count();
        assert_eq!(
            (
                count("DequantizeLinear"),
                count("MatMul"),
                count("MatMulInteger")
            ),
            (2, 2, 0)
        );
    }

    #[test]
    fn ignored_nodes_stay_float() {
        let mut m = small_model();
        let r = int8::rewrite(&mut m, int8::MatMulMode::Dynamic, &|n| n.output[0] == "y").unwrap();
        assert_eq!(r.ops["MatMul"].quantized, 1);
        assert_eq!(r.skipped.len(), 1);
    }

    #[test]
    fn a_folder_with_nothing_to_quantize_writes_nothing() {
        let mut g = GraphBuilder::new();
        let x = g.input("x", DataType::Float, &[Dim::Fixed(4)]);
        g.op_into("Relu", &[&x], vec![], &["y"]);
        g.output("y", DataType::Float, &[Dim::Fixed(4)]);
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        crate::onnx::write_model(&g.finish("relu", 17), &src.path().join("m.onnx")).unwrap();
        let e = quantize_folder(
            src.path(),
            dst.path(),
            &["m.onnx"],
            Recipe::Dynamic,
            None,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(e, QuantError::NothingToQuantize(_)), "{e}");
        assert_eq!(std::fs::read_dir(dst.path()).unwrap().count(), 0);
    }

    #[test]
    fn ignored_scope_by_name_pattern_and_type() {
        let m = small_model();
        let names: Vec<String> = m
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .map(|n| n.name().to_string())
            .collect();
        let matmuls: Vec<&String> = names.iter().filter(|n| n.contains("MatMul")).collect();
        let first_matmul = matmuls[0].clone();
        let second = format!("^{}$", regex::escape(matmuls[1]));
        let count = |scope: IgnoredScope| {
            let mut m = small_model();
            let matcher = scope.matcher().unwrap();
            int8::rewrite(&mut m, int8::MatMulMode::Dynamic, &matcher)
                .unwrap()
                .ops["MatMul"]
                .quantized
        };
        assert_eq!(
            count(IgnoredScope {
                names: vec![first_matmul],
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            count(IgnoredScope {
                patterns: vec![second],
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            count(IgnoredScope {
                patterns: vec!["MatMul".into()],
                ..Default::default()
            }),
            0
        );
        assert_eq!(
            count(IgnoredScope {
                types: vec!["MatMul".into()],
                ..Default::default()
            }),
            0
        );
        let bad = IgnoredScope {
            patterns: vec!["(".into()],
            ..Default::default()
        };
        assert!(matches!(bad.matcher().err(), Some(QuantError::Scope(_))));
    }

    #[test]
    fn rewriting_is_deterministic() {
        use prost::Message;
        let (mut a, mut b) = (small_model(), small_model());
        int8::rewrite(&mut a, int8::MatMulMode::Dynamic, &|_| false).unwrap();
        int8::rewrite(&mut b, int8::MatMulMode::Dynamic, &|_| false).unwrap();
        assert_eq!(a.encode_to_vec(), b.encode_to_vec());
    }
}
