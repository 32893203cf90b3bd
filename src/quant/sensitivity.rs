//! Per-op sensitivity to quantization, as ONNX Runtime's `qdq_loss_debug` measures it but with each op
//! quantized alone: every op the recipe would quantize gets a shadow copy (with its bias Add, when one
//! follows) that the recipe rewrites exactly as it would in the INT8 model, fed the float model's own
//! input. Running this float graph on validation data yields, per op, its float output and its
//! quantized-alone output; the normalised MSE between them ranks the ops. Errors of other ops never reach
//! an op's input, so an op late in the graph is not blamed for what earlier ones did.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::graph::{consumers, initializer_index, label};
use super::int8::embedding_table;
use super::{read_graph, rewrite_part, Calibration, QuantError, QuantOptions};
use crate::onnx::proto::{tensor_proto::DataType, NodeProto};
use crate::onnx::write_model;

/// Appended to the names of shadow nodes and values.
pub const SHADOW: &str = "/quantbench_shadow";

/// The method, as reports name it.
pub const METHOD: &str = "isolated NMSE: Σ(ŷ − y)² / Σy² of each op's output (its bias Add included) with only that op quantized by the recipe, on the float model's own inputs, over the validation items";

/// One op's float output and its quantized-alone output, both exposed as graph outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowPair {
    pub op: String,
    pub op_type: String,
    pub float_output: String,
    pub quantized_output: String,
}

/// Writes `src`'s graphs into `dst` with a quantized shadow of every op `options` would quantize; returns
/// the pairs per graph file. `calibration` as for `quantize_folder`.
pub fn shadow_folder(
    src: &Path,
    dst: &Path,
    graph_files: &[&str],
    options: &QuantOptions,
    calibration: Option<&Calibration>,
) -> Result<BTreeMap<String, Vec<ShadowPair>>, QuantError> {
    let ignored = options.ignored.matcher()?;
    let mut pairs = BTreeMap::new();
    for file in graph_files {
        let mut model = read_graph(&src.join(file))?;
        let file_pairs = add_shadows(&mut model, &ignored)?;
        let is_shadow = |n: &NodeProto| n.name().ends_with(SHADOW);
        rewrite_part(&mut model, file, options, calibration, &|n| !is_shadow(n))?;
        let exposed: Vec<(String, usize)> = file_pairs
            .iter()
            .flat_map(|p| [(p.float_output.clone(), 0), (p.quantized_output.clone(), 0)])
            .collect();
        super::observe::expose(&mut model, &exposed)?;
        write_model(&model, &dst.join(file))?;
        pairs.insert(file.to_string(), file_pairs);
    }
    super::copy_other_files(src, dst)?;
    Ok(pairs)
}

/// Appends a shadow of every quantizable op `ignored` leaves alone (a MatMul on a constant 2-D float
/// weight, with the bias Add that is its only consumer; an embedding Gather).
fn add_shadows(
    model: &mut crate::onnx::proto::ModelProto,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Result<Vec<ShadowPair>, QuantError> {
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let inits = initializer_index(graph);
    let users = consumers(graph);
    let mut shadows = Vec::new();
    let mut pairs = Vec::new();
    for n in &graph.node {
        let quantizable = super::graph::is_weight_matmul(n, &graph.initializer, &inits)
            || embedding_table(n, &inits, &graph.initializer).is_some();
        if !quantizable || ignored(n) || n.output.is_empty() {
            continue;
        }
        let op = label(n);
        let out = n.output[0].clone();
        let mut copy = n.clone();
        copy.name = Some(format!("{op}{SHADOW}"));
        copy.output = vec![format!("{out}{SHADOW}")];
        shadows.push(copy);
        let mut compared = out.clone();
        if n.op_type() == "MatMul" {
            if let Some(add) = bias_add(graph, &users, &inits, &out) {
                let mut a = graph.node[add].clone();
                for i in a.input.iter_mut().filter(|i| **i == out) {
                    *i = format!("{out}{SHADOW}");
                }
                compared = a.output[0].clone();
                a.name = Some(format!("{}{SHADOW}_bias", label(&graph.node[add])));
                a.output = vec![format!("{compared}{SHADOW}")];
                shadows.push(a);
            }
        }
        pairs.push(ShadowPair {
            op,
            op_type: n.op_type().to_string(),
            quantized_output: format!("{compared}{SHADOW}"),
            float_output: compared,
        });
    }
    graph.node.extend(shadows);
    Ok(pairs)
}

/// The Add that is `out`'s only consumer, adding a constant float bias.
fn bias_add(
    graph: &crate::onnx::proto::GraphProto,
    users: &HashMap<String, Vec<usize>>,
    inits: &HashMap<String, usize>,
    out: &str,
) -> Option<usize> {
    let &[add] = users.get(out)?.as_slice() else {
        return None;
    };
    let a = &graph.node[add];
    if a.op_type() != "Add" || a.input.len() != 2 || a.output.len() != 1 {
        return None;
    }
    let bias = a.input.iter().find(|i| i.as_str() != out)?;
    let t = &graph.initializer[*inits.get(bias)?];
    (t.data_type() == DataType::Float as i32).then_some(add)
}

/// Squared error of an op's quantized output against its float output, summed over every call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OpError {
    pub squared_error: f64,
    pub squared_reference: f64,
    pub values: u64,
}

impl OpError {
    pub fn add(&mut self, float: &[f32], quantized: &[f32]) -> Result<(), String> {
        if float.len() != quantized.len() {
            return Err(format!(
                "float and quantized outputs differ in size ({} vs {})",
                float.len(),
                quantized.len()
            ));
        }
        for (&y, &q) in float.iter().zip(quantized) {
            let (y, q) = (f64::from(y), f64::from(q));
            self.squared_error += (q - y) * (q - y);
            self.squared_reference += y * y;
        }
        self.values += float.len() as u64;
        Ok(())
    }

    /// Normalised MSE; `None` before any value or when the float output is all zeros.
    pub fn nmse(&self) -> Option<f64> {
        (self.squared_reference > 0.0).then(|| self.squared_error / self.squared_reference)
    }
}

/// One op of the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpSensitivity {
    pub op: String,
    pub op_type: String,
    /// The graph files the op is in (a decoder and its with-past twin share names and weights).
    pub files: Vec<String>,
    /// `None` when the op never ran on the validation items.
    pub nmse: Option<f64>,
}

/// The ops, most sensitive first (by NMSE, ops that never ran last, ties by name), accumulated per op
/// name over every file it appears in: an ignored scope names an op in all of them.
pub fn ranking(
    pairs: &BTreeMap<String, Vec<ShadowPair>>,
    errors: &BTreeMap<(String, String), OpError>,
) -> Vec<OpSensitivity> {
    let mut by_op: BTreeMap<&str, (OpSensitivity, OpError)> = BTreeMap::new();
    for (file, list) in pairs {
        for p in list {
            let entry = by_op.entry(&p.op).or_insert_with(|| {
                (
                    OpSensitivity {
                        op: p.op.clone(),
                        op_type: p.op_type.clone(),
                        files: Vec::new(),
                        nmse: None,
                    },
                    OpError::default(),
                )
            });
            entry.0.files.push(file.clone());
            if let Some(e) = errors.get(&(file.clone(), p.op.clone())) {
                entry.1.squared_error += e.squared_error;
                entry.1.squared_reference += e.squared_reference;
                entry.1.values += e.values;
            }
        }
    }
    let mut out: Vec<OpSensitivity> = by_op
        .into_values()
        .map(|(mut s, e)| {
            s.nmse = e.nmse();
            s
        })
        .collect();
    out.sort_by(|a, b| match (a.nmse, b.nmse) {
        (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.op.cmp(&b.op)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.op.cmp(&b.op),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nmse_is_the_error_energy_over_the_signal_energy() {
        let mut e = OpError::default();
        e.add(&[1.0, -2.0], &[1.5, -2.0]).unwrap();
        e.add(&[2.0], &[1.0]).unwrap();
        // (0.25 + 0 + 1) / (1 + 4 + 4)
        assert!((e.nmse().unwrap() - 1.25 / 9.0).abs() < 1e-12);
        assert_eq!(e.values, 3);
        assert!(e.add(&[1.0], &[1.0, 2.0]).is_err());
        assert_eq!(OpError::default().nmse(), None);
    }

    #[test]
    fn ranking_sums_an_op_over_its_files_and_puts_unrun_ops_last() {
        let pair = |op: &str| ShadowPair {
            op: op.into(),
            op_type: "MatMul".into(),
            float_output: format!("{op}_y"),
            quantized_output: format!("{op}_y{SHADOW}"),
        };
        let pairs = BTreeMap::from([
            ("decoder.onnx".to_string(), vec![pair("a"), pair("b")]),
            (
                "decoder_with_past.onnx".to_string(),
                vec![pair("a"), pair("c")],
            ),
        ]);
        let err = |e: f64, r: f64| OpError {
            squared_error: e,
            squared_reference: r,
            values: 1,
        };
        let errors = BTreeMap::from([
            (("decoder.onnx".into(), "a".into()), err(1.0, 10.0)),
            (
                ("decoder_with_past.onnx".into(), "a".into()),
                err(3.0, 10.0),
            ),
            (("decoder.onnx".into(), "b".into()), err(1.0, 100.0)),
        ]);
        let r = ranking(&pairs, &errors);
        let names: Vec<&str> = r.iter().map(|s| s.op.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!((r[0].nmse.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(r[0].files, ["decoder.onnx", "decoder_with_past.onnx"]);
        assert_eq!(r[2].nmse, None);
    }
}
