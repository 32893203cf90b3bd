//! Graph rewrites that need no calibration data.
//!
//! Dynamic INT8: every MatMul whose right operand is a constant 2-D float weight becomes
//! DynamicQuantizeLinear (activations, uint8, per tensor, at run time) → MatMulInteger with int8
//! weights quantized per output column (symmetric, stored as uint8 around 128: `graph::u8_weight`) → Cast → Mul by the combined scale. This is the pattern
//! ONNX Runtime's own quantizer emits and its optimizer fuses into one DynamicQuantizeMatMul kernel.
//! Weight-only INT8 (as `nncf.compress_weights`): the same int8 weights feed a DequantizeLinear (per output
//! column) and the MatMul stays in float: the file shrinks fourfold, activations are untouched.
//! Embedding tables (Gather on a constant 2-D float table, axis 0) keep int8 rows with one scale per row:
//! the gathered rows are cast and rescaled, so the table shrinks fourfold and the lookup stays exact to
//! half a quantization step.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::onnx::attr::int;
use crate::onnx::proto::{tensor_proto::DataType, ModelProto, NodeProto, TensorProto};

use super::graph::{f32_tensor, i8_tensor, node, u8_weight};
use super::qmath::{quantize_per_column_i8, quantize_per_row_i8};
use super::{float_data, OpCount, QuantError};

/// What one rewrite did.
#[derive(Debug, Default)]
pub struct Rewrite {
    pub ops: BTreeMap<String, OpCount>,
    /// Constant-weight MatMuls left in float, with why.
    pub skipped: Vec<String>,
}

impl Rewrite {
    /// Adds another graph's rewrite (a nested graph's) to this one.
    pub fn absorb(&mut self, other: Rewrite) {
        for (op, c) in other.ops {
            let mine = self.ops.entry(op).or_default();
            mine.quantized += c.quantized;
            mine.total += c.total;
        }
        self.skipped.extend(other.skipped);
    }

    /// What leaving `model` as it is does: every op counted, none quantized.
    pub fn unchanged(model: &ModelProto) -> Result<Rewrite, QuantError> {
        let graph = model.graph.as_ref().ok_or(QuantError::NoGraph)?;
        let mut result = Rewrite::default();
        for n in &graph.node {
            result.ops.entry(n.op_type().to_string()).or_default().total += 1;
        }
        Ok(result)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatMulMode {
    /// Integer MatMul with activations quantized at run time.
    Dynamic,
    /// Float MatMul on weights dequantized from int8.
    WeightsOnly,
}

/// Rewrites `model` in place. `ignored(node)` keeps a node in float.
pub fn rewrite(
    model: &mut ModelProto,
    mode: MatMulMode,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Result<Rewrite, QuantError> {
    let mut result = Rewrite::unchanged(model)?;
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let init_index = super::graph::initializer_index(graph);

    let mut new_nodes = Vec::with_capacity(graph.node.len() * 2);
    let mut new_inits: Vec<TensorProto> = Vec::new();
    let mut quantized_weights: HashSet<String> = HashSet::new();
    for n in std::mem::take(&mut graph.node) {
        if let Some(table) = embedding_table(&n, &init_index, &graph.initializer) {
            if ignored(&n) {
                let label = if n.name().is_empty() {
                    &n.output[0]
                } else {
                    n.name()
                };
                result
                    .skipped
                    .push(format!("{label}: in the ignored scope"));
                new_nodes.push(n);
                continue;
            }
            gather_rewrite(
                &n,
                table,
                &mut new_nodes,
                &mut new_inits,
                &mut quantized_weights,
            )?;
            result.ops.entry("Gather".into()).or_default().quantized += 1;
            continue;
        }
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
        if w.data_type() != DataType::Float as i32 || w.dims.len() != 2 || w.dims.contains(&0) {
            result.skipped.push(format!(
                "{label}: weight `{}` is not a non-empty 2-D float tensor",
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
            let (q, scales) = quantize_per_column_i8(&data, k, cols);
            if mode == MatMulMode::WeightsOnly {
                new_inits.push(i8_tensor(&q_name, vec![k as i64, cols as i64], &q));
                new_inits.push(i8_tensor(&zp_name, vec![cols as i64], &vec![0i8; cols]));
            } else {
                new_inits.extend(u8_weight(
                    &q_name,
                    &zp_name,
                    vec![k as i64, cols as i64],
                    &q,
                ));
            }
            new_inits.push(f32_tensor(&s_name, vec![cols as i64], &scales));
        }
        let out = &n.output[0];
        let v = |suffix: &str| format!("{out}_{suffix}");
        if mode == MatMulMode::WeightsOnly {
            let mut dq = node(
                "DequantizeLinear",
                format!("{label}_weight_dequant"),
                vec![q_name, s_name, zp_name],
                vec![v("weight")],
            );
            dq.attribute.push(int("axis", 1));
            new_nodes.push(dq);
            new_nodes.push(node(
                "MatMul",
                label.clone(),
                vec![n.input[0].clone(), v("weight")],
                vec![out.clone()],
            ));
            result.ops.entry("MatMul".into()).or_default().quantized += 1;
            continue;
        }
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

    super::graph::drop_unused_initializers(graph);
    graph.initializer.extend(new_inits);
    Ok(result)
}

/// The constant float 2-D table of a `Gather` along axis 0, if that is what `n` is.
pub(super) fn embedding_table<'a>(
    n: &NodeProto,
    index: &HashMap<String, usize>,
    inits: &'a [TensorProto],
) -> Option<&'a TensorProto> {
    if n.op_type() != "Gather" || n.input.len() != 2 {
        return None;
    }
    let axis = n
        .attribute
        .iter()
        .find(|a| a.name() == "axis")
        .map_or(0, |a| a.i());
    let t = &inits[*index.get(&n.input[0])?];
    (axis == 0
        && t.dims.len() == 2
        && !t.dims.contains(&0)
        && t.data_type() == DataType::Float as i32)
        .then_some(t)
}

/// Gather(table, ids) → Cast(Gather(int8 table, ids)) · Unsqueeze(Gather(row scales, ids), -1).
pub(super) fn gather_rewrite(
    n: &NodeProto,
    table: &TensorProto,
    nodes: &mut Vec<NodeProto>,
    inits: &mut Vec<TensorProto>,
    done: &mut HashSet<String>,
) -> Result<(), QuantError> {
    let (rows, cols) = (table.dims[0] as usize, table.dims[1] as usize);
    let name = table.name().to_string();
    let (q_name, s_name, axes_name) = (
        format!("{name}_quantized"),
        format!("{name}_row_scale"),
        format!("{name}_unsqueeze_axes"),
    );
    if done.insert(name.clone()) {
        let data = float_data(table)?;
        let (q, scales) = quantize_per_row_i8(&data, cols);
        inits.push(i8_tensor(&q_name, vec![rows as i64, cols as i64], &q));
        inits.push(f32_tensor(&s_name, vec![rows as i64], &scales));
        inits.push(TensorProto {
            name: Some(axes_name.clone()),
            dims: vec![1],
            data_type: Some(DataType::Int64 as i32),
            raw_data: Some((-1i64).to_le_bytes().to_vec()),
            ..Default::default()
        });
    }
    let (ids, out) = (&n.input[1], &n.output[0]);
    let label = if n.name().is_empty() {
        out.clone()
    } else {
        n.name().to_string()
    };
    let v = |suffix: &str| format!("{out}_{suffix}");
    nodes.push(node(
        "Gather",
        format!("{label}_rows_q"),
        vec![q_name, ids.clone()],
        vec![v("rows_q")],
    ));
    let mut cast = node(
        "Cast",
        format!("{label}_rows_cast"),
        vec![v("rows_q")],
        vec![v("rows_f")],
    );
    cast.attribute.push(int("to", DataType::Float as i64));
    nodes.push(cast);
    nodes.push(node(
        "Gather",
        format!("{label}_scales"),
        vec![s_name, ids.clone()],
        vec![v("row_scale")],
    ));
    nodes.push(node(
        "Unsqueeze",
        format!("{label}_scales_unsqueeze"),
        vec![v("row_scale"), axes_name],
        vec![v("row_scale_u")],
    ));
    nodes.push(node(
        "Mul",
        format!("{label}_dequant"),
        vec![v("rows_f"), v("row_scale_u")],
        vec![out.clone()],
    ));
    Ok(())
}
