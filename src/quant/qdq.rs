//! Static INT8 in QDQ form, transformer preset: only the MatMuls with a constant weight are quantized.
//! Their activation gets one QuantizeLinear (uint8, per tensor, range from calibration) and a
//! DequantizeLinear per consumer; their weight becomes int8 (symmetric, per output column) behind a
//! DequantizeLinear. ONNX Runtime fuses each DQ → MatMul into MatMulIntegerToFloat. Attention score and
//! context MatMuls (two activations), Softmax, LayerNorm, GELU and the residual Adds stay in float, as
//! NNCF's `ModelType.TRANSFORMER` keeps them. Embedding tables get int8 rows as in the dynamic recipe.
//!
//! Fast bias correction: where the MatMul's only consumer adds a constant bias, the bias absorbs the mean
//! output shift the weight rounding causes on the calibration data, E[x]·(W − Ŵ), per output channel.

use std::collections::{HashMap, HashSet};

use super::calib::{u8_params, Estimator, TensorStats};
use super::graph::{
    consumers, drop_unused_initializers, f32_tensor, label, node, u8_tensor, u8_weight,
    weight_matmuls,
};
use super::int8::{embedding_table, gather_rewrite, Rewrite};
use super::qmath::{dequantize_i8, quantize_per_column_i8};
use super::{float_data, QuantError};
use crate::onnx::attr::int;
use crate::onnx::proto::{tensor_proto::DataType, ModelProto, NodeProto, TensorProto};

pub fn rewrite(
    model: &mut ModelProto,
    stats: &HashMap<String, TensorStats>,
    estimator: Estimator,
    bias_correction: bool,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Result<(Rewrite, usize), QuantError> {
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let mut result = Rewrite::default();
    for n in &graph.node {
        result.ops.entry(n.op_type().to_string()).or_default().total += 1;
    }
    let init_index = super::graph::initializer_index(graph);
    for n in graph.node.iter().filter(|n| n.op_type() == "MatMul") {
        if ignored(n) && n.input.len() == 2 && init_index.contains_key(&n.input[1]) {
            result
                .skipped
                .push(format!("{}: in the ignored scope", label(n)));
        }
    }
    let targets = weight_matmuls(graph, ignored);
    let users = consumers(graph);

    let mut new_inits: Vec<TensorProto> = Vec::new();
    // What replaces each target node, and bias edits (node, new bias initializer).
    let mut replacement: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut bias_edits: Vec<(usize, String)> = Vec::new();
    let mut quantized_acts: HashSet<String> = HashSet::new();
    let mut quantized_weights: HashMap<String, (Vec<i8>, Vec<f32>)> = HashMap::new();
    let mut corrected = 0usize;
    for t in &targets {
        let n = &graph.node[t.node];
        let lbl = label(n);
        let Some(st) = stats.get(&t.activation) else {
            result.skipped.push(format!(
                "{lbl}: no calibration statistics for `{}` (never ran on the calibration set)",
                t.activation
            ));
            continue;
        };
        let act = &t.activation;
        let (a_scale, a_zp, a_q) = (
            format!("{act}_scale"),
            format!("{act}_zero_point"),
            format!("{act}_quantized"),
        );
        let mut nodes = Vec::new();
        if quantized_acts.insert(act.clone()) {
            let (lo, hi) = st.range(estimator);
            let (scale, zp) = u8_params(lo, hi);
            new_inits.push(f32_tensor(&a_scale, vec![], &[scale]));
            new_inits.push(u8_tensor(&a_zp, vec![], &[zp]));
            nodes.push(node(
                "QuantizeLinear",
                format!("{act}_QuantizeLinear"),
                vec![act.clone(), a_scale.clone(), a_zp.clone()],
                vec![a_q.clone()],
            ));
        }
        let (w_q, w_s, w_zp) = (
            format!("{}_quantized", t.weight),
            format!("{}_scale", t.weight),
            format!("{}_zero_point", t.weight),
        );
        if !quantized_weights.contains_key(&t.weight) {
            let data = float_data(&graph.initializer[init_index[&t.weight]])?;
            let (q, scales) = quantize_per_column_i8(&data, t.k, t.n);
            new_inits.extend(u8_weight(&w_q, &w_zp, vec![t.k as i64, t.n as i64], &q));
            new_inits.push(f32_tensor(&w_s, vec![t.n as i64], &scales));
            quantized_weights.insert(t.weight.clone(), (q, scales));
        }
        let out = &n.output[0];
        nodes.push(node(
            "DequantizeLinear",
            format!("{lbl}_input_dequant"),
            vec![a_q, a_scale, a_zp],
            vec![format!("{out}_input_dq")],
        ));
        let mut wdq = node(
            "DequantizeLinear",
            format!("{lbl}_weight_dequant"),
            vec![w_q, w_s, w_zp],
            vec![format!("{out}_weight_dq")],
        );
        wdq.attribute.push(int("axis", 1));
        nodes.push(wdq);
        nodes.push(node(
            "MatMul",
            lbl.clone(),
            vec![format!("{out}_input_dq"), format!("{out}_weight_dq")],
            vec![out.clone()],
        ));
        replacement.insert(t.node, nodes);
        result.ops.entry("MatMul".into()).or_default().quantized += 1;

        if bias_correction {
            if let Some((add, bias)) = bias_add(graph, &users, &init_index, out, t.n) {
                let w = float_data(&graph.initializer[init_index[&t.weight]])?;
                let (q, scales) = &quantized_weights[&t.weight];
                let mean = st.channel_mean();
                let mut b = float_data(&graph.initializer[init_index[&bias]])?;
                for (k, (&mu, row)) in mean.iter().zip(w.chunks_exact(t.n)).enumerate() {
                    if mu == 0.0 {
                        continue;
                    }
                    for (j, (bj, &wj)) in b.iter_mut().zip(row).enumerate() {
                        *bj += mu * (wj - dequantize_i8(q[k * t.n + j], scales[j], 0));
                    }
                }
                let name = format!("{bias}_corrected_{}", t.node);
                new_inits.push(f32_tensor(&name, vec![t.n as i64], &b));
                bias_edits.push((add, name));
                corrected += 1;
            }
        }
    }
    for (add, name) in bias_edits {
        let n = &mut graph.node[add];
        let slot = if init_index.contains_key(&n.input[1]) {
            1
        } else {
            0
        };
        n.input[slot] = name;
    }
    let mut table_done = HashSet::new();
    let mut nodes = Vec::with_capacity(graph.node.len() * 2);
    for (i, n) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        if let Some(r) = replacement.remove(&i) {
            nodes.extend(r);
        } else if let Some(table) = embedding_table(&n, &init_index, &graph.initializer) {
            if ignored(&n) {
                result
                    .skipped
                    .push(format!("{}: in the ignored scope", label(&n)));
                nodes.push(n);
            } else {
                gather_rewrite(&n, table, &mut nodes, &mut new_inits, &mut table_done)?;
                result.ops.entry("Gather".into()).or_default().quantized += 1;
            }
        } else {
            nodes.push(n);
        }
    }
    graph.node = nodes;
    drop_unused_initializers(graph);
    graph.initializer.extend(new_inits);
    Ok((result, corrected))
}

/// The Add that is `out`'s only consumer with a constant float bias of `n` values: (node, bias name).
fn bias_add(
    graph: &crate::onnx::proto::GraphProto,
    users: &HashMap<String, Vec<usize>>,
    inits: &HashMap<String, usize>,
    out: &str,
    n: usize,
) -> Option<(usize, String)> {
    let &[add] = users.get(out)?.as_slice() else {
        return None;
    };
    let a = &graph.node[add];
    if a.op_type() != "Add" || a.input.len() != 2 {
        return None;
    }
    let bias = a.input.iter().find(|i| i.as_str() != out)?;
    let t = &graph.initializer[*inits.get(bias)?];
    (t.data_type() == DataType::Float as i32 && t.dims == [n as i64]).then(|| (add, bias.clone()))
}
