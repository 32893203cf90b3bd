//! INT8 quantization of ONNX graphs, in Rust. One public door: `quantize_folder` rewrites every graph of a
//! model folder with a recipe and says what it did; callers verify the result with ORT before publishing it.

mod int8;
pub mod qmath;

use std::collections::BTreeMap;
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
    #[error("ignored scope: {0}")]
    Scope(String),
    #[error("recipe `{0}` is not implemented yet (available: dynamic, weights)")]
    NotImplemented(String),
    #[error("unknown recipe `{0}` (known: dynamic, static, weights)")]
    UnknownRecipe(String),
    #[error("{path}: {what}")]
    Io { path: PathBuf, what: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recipe {
    /// Weights int8 per output channel (symmetric), activations quantized at run time (uint8, per tensor).
    Dynamic,
    /// Data-free weight compression: int8 weights dequantized to float before each MatMul.
    Weights,
}

impl Recipe {
    pub fn parse(s: &str) -> Result<Self, QuantError> {
        match s {
            "dynamic" => Ok(Recipe::Dynamic),
            "weights" => Ok(Recipe::Weights),
            "static" => Err(QuantError::NotImplemented(s.to_string())),
            _ => Err(QuantError::UnknownRecipe(s.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Recipe::Dynamic => "dynamic",
            Recipe::Weights => "weights",
        }
    }

    /// The parameters recorded with every output.
    pub fn parameters(self) -> serde_json::Value {
        match self {
            Recipe::Dynamic => serde_json::json!({
                "weights": "int8, symmetric, per output channel (scale = max|w| / 127, zero point 0)",
                "activations": "uint8, asymmetric, per tensor, computed at run time (DynamicQuantizeLinear)",
                "ops": ["MatMul with a constant 2-D weight", "Gather from a constant 2-D table (axis 0)"],
                "embeddings": "int8 rows, symmetric, one scale per row; dequantized after the lookup",
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

/// A recipe and the nodes it must leave alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantOptions {
    pub recipe: Recipe,
    pub ignored: IgnoredScope,
}

impl From<Recipe> for QuantOptions {
    fn from(recipe: Recipe) -> Self {
        QuantOptions {
            recipe,
            ignored: IgnoredScope::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCount {
    pub quantized: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartSummary {
    pub file: String,
    pub ops: BTreeMap<String, OpCount>,
    pub left_in_float: Vec<String>,
}

/// The JSON sidecar written next to the quantized graphs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuantSummary {
    pub recipe: Recipe,
    pub parameters: serde_json::Value,
    #[serde(default)]
    pub ignored_scope: IgnoredScope,
    pub calibration_sha256: Option<String>,
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

/// Rewrites every graph file of `src` into `dst` (a fresh folder) and copies the other files.
pub fn quantize_folder(
    src: &Path,
    dst: &Path,
    graph_files: &[&str],
    options: impl Into<QuantOptions>,
    progress: &mut dyn FnMut(&str),
) -> Result<QuantSummary, QuantError> {
    let start = Instant::now();
    let options = options.into();
    let recipe = options.recipe;
    let ignored = options.ignored.matcher()?;
    let mut named_seen = vec![false; options.ignored.names.len()];
    let io = |path: &Path, e: std::io::Error| QuantError::Io {
        path: path.to_path_buf(),
        what: e.to_string(),
    };
    let mut parts = Vec::new();
    let mut rewritten = Vec::new();
    for file in graph_files {
        let path = src.join(file);
        progress(&format!("quantize {file}: {} ...", recipe.name()));
        let mut model = read_model(&path)?;
        if let Some(t) = model.graph.as_ref().and_then(|g| {
            g.initializer
                .iter()
                .find(|t| t.data_location() == DataLocation::External)
        }) {
            return Err(QuantError::ExternalData {
                path,
                tensor: t.name().to_string(),
            });
        }
        let mode = match recipe {
            Recipe::Dynamic => int8::MatMulMode::Dynamic,
            Recipe::Weights => int8::MatMulMode::WeightsOnly,
        };
        if let Some(g) = &model.graph {
            for (seen, name) in named_seen.iter_mut().zip(&options.ignored.names) {
                *seen |= g.node.iter().any(|n| n.name() == name);
            }
        }
        let rewrite = int8::rewrite(&mut model, mode, &ignored)?;
        rewritten.push((file, model));
        parts.push(PartSummary {
            file: file.to_string(),
            ops: rewrite.ops,
            left_in_float: rewrite.skipped,
        });
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
    if quantized == 0 {
        return Err(QuantError::NothingToQuantize(src.to_path_buf()));
    }
    for (file, model) in &rewritten {
        write_model(model, &dst.join(file))?;
    }
    for entry in std::fs::read_dir(src).map_err(|e| io(src, e))?.flatten() {
        let p = entry.path();
        let name = entry.file_name();
        let is_graph = graph_files.iter().any(|g| name == *g);
        if p.is_file()
            && !is_graph
            && name != SIDECAR_FILE
            && !name.to_string_lossy().ends_with(".onnx")
        {
            std::fs::copy(&p, dst.join(&name)).map_err(|e| io(&p, e))?;
        }
    }
    let summary = QuantSummary {
        recipe,
        parameters: recipe.parameters(),
        ignored_scope: options.ignored.clone(),
        calibration_sha256: None,
        source: src.display().to_string(),
        parts,
        seconds: start.elapsed().as_secs_f64(),
        quantbench_version: env!("CARGO_PKG_VERSION").into(),
    };
    let text = serde_json::to_string_pretty(&summary).expect("summary serialises") + "\n";
    let sidecar = dst.join(SIDECAR_FILE);
    crate::fsutil::write_atomic(&sidecar, text.as_bytes()).map_err(|e| io(&sidecar, e))?;
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
        assert_eq!(q.data_type(), DataType::Int8 as i32);
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
