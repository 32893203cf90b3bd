//! SmoothQuant: moves the activations' per-channel outliers into the weights before static quantization.
//! For the MatMuls that read one activation X (say q, k and v after a LayerNorm), channel k gets
//! s_k = max|X_k|^α / max|W_k,:|^(1−α); X is divided by s and each W's row k multiplied by it, so the float
//! product is unchanged. The division is folded into the LayerNorm's scale and bias when a LayerNorm
//! produces X for these MatMuls only; otherwise one `Mul` by 1/s is inserted before them.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::calib::TensorStats;
use super::graph::{consumers, drop_unused_initializers, f32_tensor, node, weight_matmuls};
use super::{float_data, QuantError};
use crate::onnx::proto::{ModelProto, NodeProto, TensorProto};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmoothReport {
    pub alpha: f32,
    /// Activations smoothed (each feeding one or more MatMuls).
    pub activations: usize,
    pub matmuls: usize,
    pub folded_into_layernorm: usize,
    pub scale_nodes: usize,
}

/// Per-channel smoothing factors (1 where either side is all zero).
pub fn factors(x_absmax: &[f32], w_absmax: &[f32], alpha: f32) -> Vec<f32> {
    x_absmax
        .iter()
        .zip(w_absmax)
        .map(|(&x, &w)| {
            if x <= 0.0 || w <= 0.0 {
                1.0
            } else {
                (x.powf(alpha) / w.powf(1.0 - alpha)).clamp(1e-5, 1e5)
            }
        })
        .collect()
}

pub fn smooth(
    model: &mut ModelProto,
    stats: &HashMap<String, TensorStats>,
    alpha: f32,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Result<SmoothReport, QuantError> {
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let mut report = SmoothReport {
        alpha,
        ..Default::default()
    };
    let targets = weight_matmuls(graph, ignored);
    let users = consumers(graph);
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match groups.iter_mut().find(|(a, _)| *a == t.activation) {
            Some((_, members)) => members.push(i),
            None => groups.push((t.activation.clone(), vec![i])),
        }
    }
    let init_index = super::graph::initializer_index(graph);
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut new_inits: Vec<TensorProto> = Vec::new();
    let mut taken: HashSet<String> = init_index.keys().cloned().collect();
    let mut fresh = |base: &str| {
        let mut name = format!("{base}_smoothed");
        let mut i = 1;
        while !taken.insert(name.clone()) {
            i += 1;
            name = format!("{base}_smoothed{i}");
        }
        name
    };
    let mut input_edits: Vec<(usize, usize, String)> = Vec::new();
    let mut inserts: Vec<(usize, NodeProto)> = Vec::new();
    for (act, members) in &groups {
        let Some(st) = stats.get(act) else { continue };
        let k = targets[members[0]].k;
        if st.channels() != k || members.iter().any(|&m| targets[m].k != k) {
            continue;
        }
        let mut weights = Vec::with_capacity(members.len());
        let mut w_absmax = vec![0f32; k];
        for &m in members {
            let t = &targets[m];
            let w = float_data(&graph.initializer[init_index[&t.weight]])?;
            for (row, max) in w.chunks_exact(t.n).zip(w_absmax.iter_mut()) {
                *max = row.iter().fold(*max, |a, v| a.max(v.abs()));
            }
            weights.push(w);
        }
        let s = factors(&st.channel_absmax, &w_absmax, alpha);
        for (&m, mut w) in members.iter().zip(weights) {
            let t = &targets[m];
            for (row, &f) in w.chunks_exact_mut(t.n).zip(&s) {
                row.iter_mut().for_each(|v| *v *= f);
            }
            let name = fresh(&t.weight);
            new_inits.push(f32_tensor(&name, vec![k as i64, t.n as i64], &w));
            input_edits.push((t.node, 1, name));
        }
        report.activations += 1;
        report.matmuls += members.len();

        let member_nodes: HashSet<usize> = members.iter().map(|&m| targets[m].node).collect();
        let only_these = users
            .get(act)
            .is_some_and(|u| u.iter().all(|i| member_nodes.contains(i)));
        let norm = producer.get(act.as_str()).copied().filter(|&p| {
            let n = &graph.node[p];
            n.op_type() == "LayerNormalization"
                && only_these
                && n.input[1..]
                    .iter()
                    .all(|i| !i.is_empty() && init_index.contains_key(i))
        });
        if let Some(p) = norm {
            for slot in 1..graph.node[p].input.len() {
                let src = &graph.initializer[init_index[&graph.node[p].input[slot]]];
                let mut v = float_data(src)?;
                if v.len() != k {
                    return Err(QuantError::Tensor(format!(
                        "LayerNorm parameter `{}` has {} values for {k} channels",
                        src.name(),
                        v.len()
                    )));
                }
                v.iter_mut().zip(&s).for_each(|(x, f)| *x /= f);
                let name = fresh(src.name());
                new_inits.push(f32_tensor(&name, vec![k as i64], &v));
                input_edits.push((p, slot, name));
            }
            report.folded_into_layernorm += 1;
        } else {
            let inv: Vec<f32> = s.iter().map(|f| 1.0 / f).collect();
            let inv_name = fresh(&format!("{act}_inverse_scale"));
            new_inits.push(f32_tensor(&inv_name, vec![k as i64], &inv));
            let out = format!("{act}_smoothed");
            let first = members.iter().map(|&m| targets[m].node).min().unwrap_or(0);
            inserts.push((
                first,
                node(
                    "Mul",
                    format!("{act}_SmoothQuant"),
                    vec![act.clone(), inv_name],
                    vec![out.clone()],
                ),
            ));
            for &m in members {
                input_edits.push((targets[m].node, 0, out.clone()));
            }
            report.scale_nodes += 1;
        }
    }
    for (n, slot, name) in input_edits {
        graph.node[n].input[slot] = name;
    }
    inserts.sort_by_key(|(i, _)| *i);
    let mut nodes = Vec::with_capacity(graph.node.len() + inserts.len());
    let mut pending = inserts.into_iter().peekable();
    for (i, n) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        while let Some((_, ins)) = pending.next_if(|(at, _)| *at == i) {
            nodes.push(ins);
        }
        nodes.push(n);
    }
    graph.node = nodes;
    graph.initializer.extend(new_inits);
    drop_unused_initializers(graph);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_hand_worked() {
        // α = 0.5: s = sqrt(max|X|) / sqrt(max|W|) = sqrt(16) / sqrt(4) = 2.
        assert_eq!(factors(&[16.0, 0.0], &[4.0, 3.0], 0.5), vec![2.0, 1.0]);
        // α = 1: all the range moves to the weights.
        assert_eq!(factors(&[8.0], &[0.5], 1.0), vec![8.0]);
    }
}
