//! Dynamic INT8: every MatMul whose right operand is a constant 2-D float weight becomes
//! DynamicQuantizeLinear (activations, uint8, per tensor, at run time) → MatMulInteger with signed int8
//! weights quantized per output column (symmetric) → Cast → Mul by the combined scale. This is the pattern
//! ONNX Runtime's own quantizer emits and its optimizer fuses into one DynamicQuantizeMatMul kernel.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::onnx::attr::int;
use crate::onnx::proto::{tensor_proto::DataType, ModelProto, NodeProto, TensorProto};

use super::qmath::quantize_per_column_i8;
use super::{float_data, OpCount, QuantError};

/// What one rewrite did.
#[derive(Debug, Default)]
pub struct Rewrite {
    pub ops: BTreeMap<String, OpCount>,
    /// Constant-weight MatMuls left in float, with why.
    pub skipped: Vec<String>,
}

fn i8_tensor(name: &str, dims: Vec<i64>, data: &[i8]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims,
        data_type: Some(DataType::Int8 as i32),
        raw_data: Some(data.iter().map(|&v| v as u8).collect()),
        ..Default::default()
    }
}

fn f32_tensor(name: &str, dims: Vec<i64>, data: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims,
        data_type: Some(DataType::Float as i32),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

fn node(op: &str, name: String, inputs: Vec<String>, outputs: Vec<String>) -> NodeProto {
    NodeProto {
        name: Some(name),
        op_type: Some(op.into()),
        input: inputs,
        output: outputs,
        ..Default::default()
    }
}

/// Rewrites `model` in place. `ignored(node)` keeps a node in float.
pub fn rewrite(
    model: &mut ModelProto,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Result<Rewrite, QuantError> {
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let init_index: HashMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name().to_string(), i))
        .collect();
    let mut result = Rewrite::default();
    for n in &graph.node {
        result.ops.entry(n.op_type().to_string()).or_default().total += 1;
    }

    let mut new_nodes = Vec::with_capacity(graph.node.len() * 2);
    let mut new_inits: Vec<TensorProto> = Vec::new();
    let mut quantized_weights: HashSet<String> = HashSet::new();
    for n in std::mem::take(&mut graph.node) {
        let weight = (n.op_type() == "MatMul" && n.input.len() == 2)
            .then(|| init_index.get(&n.input[1]).map(|&i| &graph.initializer[i]))
            .flatten();
        let Some(w) = weight else {
            new_nodes.push(n);
            continue;
        };
        let label = if n.name().is_empty() {
            n.output[0].clone()
        } else {
            n.name().to_string()
        };
        if ignored(&n) {
            result
                .skipped
                .push(format!("{label}: in the ignored scope"));
            new_nodes.push(n);
            continue;
        }
        if w.data_type() != DataType::Float as i32 || w.dims.len() != 2 {
            result.skipped.push(format!(
                "{label}: weight `{}` is not a 2-D float tensor",
                w.name()
            ));
            new_nodes.push(n);
            continue;
        }
        let (k, cols) = (w.dims[0] as usize, w.dims[1] as usize);
        let wname = w.name().to_string();
        let (q_name, s_name, zp_name) = (
            format!("{wname}_quantized"),
            format!("{wname}_scale"),
            format!("{wname}_zero_point"),
        );
        if quantized_weights.insert(wname.clone()) {
            let data = float_data(w)?;
            if data.len() != k * cols {
                return Err(QuantError::Tensor(format!(
                    "initializer `{wname}` holds {} values for shape [{k}, {cols}]",
                    data.len()
                )));
            }
            let (q, scales) = quantize_per_column_i8(&data, k, cols);
            new_inits.push(i8_tensor(&q_name, vec![k as i64, cols as i64], &q));
            new_inits.push(f32_tensor(&s_name, vec![cols as i64], &scales));
            new_inits.push(i8_tensor(&zp_name, vec![cols as i64], &vec![0i8; cols]));
        }
        let out = &n.output[0];
        let v = |suffix: &str| format!("{out}_{suffix}");
        new_nodes.push(node(
            "DynamicQuantizeLinear",
            format!("{label}_quant"),
            vec![n.input[0].clone()],
            vec![v("a_q"), v("a_scale"), v("a_zp")],
        ));
        new_nodes.push(node(
            "MatMulInteger",
            format!("{label}_matmul_int"),
            vec![v("a_q"), q_name, v("a_zp"), zp_name],
            vec![v("acc_i32")],
        ));
        let mut cast = node(
            "Cast",
            format!("{label}_cast"),
            vec![v("acc_i32")],
            vec![v("acc_f32")],
        );
        cast.attribute.push(int("to", DataType::Float as i64));
        new_nodes.push(cast);
        new_nodes.push(node(
            "Mul",
            format!("{label}_scales"),
            vec![v("a_scale"), s_name],
            vec![v("scale")],
        ));
        new_nodes.push(node(
            "Mul",
            format!("{label}_dequant"),
            vec![v("acc_f32"), v("scale")],
            vec![out.clone()],
        ));
        result.ops.entry("MatMul".into()).or_default().quantized += 1;
    }
    graph.node = new_nodes;

    // Float weights no node reads any more are dropped.
    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|o| o.name()))
        .collect();
    let used: HashSet<String> = used.into_iter().map(str::to_string).collect();
    graph.initializer.retain(|t| used.contains(t.name()));
    graph.initializer.extend(new_inits);
    Ok(result)
}
