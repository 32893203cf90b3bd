//! Small pieces every rewrite shares: tensor and node constructors, and the MatMuls with a constant weight.

use std::collections::HashMap;

use crate::onnx::proto::{tensor_proto::DataType, GraphProto, NodeProto, TensorProto};

pub fn i8_tensor(name: &str, dims: Vec<i64>, data: &[i8]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims,
        data_type: Some(DataType::Int8 as i32),
        raw_data: Some(data.iter().map(|&v| v as u8).collect()),
        ..Default::default()
    }
}

pub fn u8_tensor(name: &str, dims: Vec<i64>, data: &[u8]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims,
        data_type: Some(DataType::Uint8 as i32),
        raw_data: Some(data.to_vec()),
        ..Default::default()
    }
}

/// A symmetric int8 weight `q` as an integer kernel's operand: stored as uint8 (q + 128) with zero point 128
/// per column, the same values. ONNX Runtime's u8·s8 kernels on x86 CPUs without VNNI (AVX2 `vpmaddubsw`)
/// add products in pairs into saturating int16, so s8 weights near ±127 clip against uint8 activations;
/// its u8·u8 kernel does not. On this project's AVX2 machines s8 weights took tiny.en's dynamic INT8 WER
/// on the bundled speech to 7.66 % (FP32 5.96 %), u8 weights to 5.32 %: the same model then gives the same
/// result on every CPU.
pub fn u8_weight(q_name: &str, zp_name: &str, dims: Vec<i64>, q: &[i8]) -> [TensorProto; 2] {
    let columns = *dims.last().unwrap_or(&0) as usize;
    let shifted: Vec<u8> = q.iter().map(|&v| (v as i16 + 128) as u8).collect();
    [
        u8_tensor(q_name, dims, &shifted),
        u8_tensor(zp_name, vec![columns as i64], &vec![128u8; columns]),
    ]
}

/// A 1-D int64 constant (shapes, axes, pads).
pub fn i64_tensor(name: &str, data: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![data.len() as i64],
        data_type: Some(DataType::Int64 as i32),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

pub fn f32_tensor(name: &str, dims: Vec<i64>, data: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims,
        data_type: Some(DataType::Float as i32),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

pub fn node(op: &str, name: String, inputs: Vec<String>, outputs: Vec<String>) -> NodeProto {
    NodeProto {
        name: Some(name),
        op_type: Some(op.into()),
        input: inputs,
        output: outputs,
        ..Default::default()
    }
}

/// A node's name, or its first output's when it has none.
pub fn label(n: &NodeProto) -> String {
    if n.name().is_empty() {
        n.output.first().cloned().unwrap_or_default()
    } else {
        n.name().to_string()
    }
}

/// A MatMul whose right operand is a constant 2-D float initializer.
#[derive(Debug, Clone)]
pub struct WeightMatMul {
    pub node: usize,
    pub activation: String,
    pub weight: String,
    /// Rows (input channels) and columns (output channels) of the weight.
    pub k: usize,
    pub n: usize,
}

/// Every MatMul of `graph` with a constant 2-D float weight that `ignored` does not exclude, in node order.
pub fn weight_matmuls(
    graph: &GraphProto,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Vec<WeightMatMul> {
    let inits: HashMap<&str, &TensorProto> =
        graph.initializer.iter().map(|t| (t.name(), t)).collect();
    weight_matmuls_reading(graph, &inits, ignored)
}

/// [`weight_matmuls`] for a graph whose weights are `inits` (an outer scope's, for a nested graph).
pub fn weight_matmuls_reading(
    graph: &GraphProto,
    inits: &HashMap<&str, &TensorProto>,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Vec<WeightMatMul> {
    graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op_type() == "MatMul" && n.input.len() == 2 && !ignored(n))
        .filter_map(|(i, n)| {
            let w = inits.get(n.input[1].as_str())?;
            (w.data_type() == DataType::Float as i32
                && w.dims.len() == 2
                && w.dims.iter().all(|&d| d > 0))
            .then(|| WeightMatMul {
                node: i,
                activation: n.input[0].clone(),
                weight: w.name().to_string(),
                k: w.dims[0] as usize,
                n: w.dims[1] as usize,
            })
        })
        .collect()
}

/// Position of each initializer, by name.
pub fn initializer_index(graph: &GraphProto) -> HashMap<String, usize> {
    graph
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name().to_string(), i))
        .collect()
}

/// Node indices reading each value.
pub fn consumers(graph: &GraphProto) -> HashMap<String, Vec<usize>> {
    let mut map: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for input in &n.input {
            let list = map.entry(input.clone()).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    map
}

/// The graphs nested in `n`'s attributes: an `If`'s branches, a `Loop`'s or `Scan`'s body.
pub fn subgraphs(n: &NodeProto) -> impl Iterator<Item = &GraphProto> {
    n.attribute
        .iter()
        .flat_map(|a| a.g.iter().chain(a.graphs.iter()))
}

/// Every name `n` reads: its inputs, and every name the graphs nested in it use (a branch reads outer
/// values by name, so a value or weight read only inside a branch is still in use).
pub fn reads(n: &NodeProto) -> Vec<&str> {
    let mut out: Vec<&str> = n.input.iter().map(String::as_str).collect();
    for g in subgraphs(n) {
        names_used_in(g, &mut out);
    }
    out
}

/// Whether `g` or a graph nested in it has a node called `name`.
pub fn has_node_named(g: &GraphProto, name: &str) -> bool {
    g.node
        .iter()
        .any(|n| n.name() == name || subgraphs(n).any(|s| has_node_named(s, name)))
}

fn names_used_in<'a>(g: &'a GraphProto, out: &mut Vec<&'a str>) {
    for n in &g.node {
        out.extend(reads(n));
    }
    out.extend(g.output.iter().map(|o| o.name()));
}

/// Drops initializers no node (nor any graph nested in one) and no graph output reads any more.
pub fn drop_unused_initializers(graph: &mut GraphProto) {
    let used: std::collections::HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| reads(n).into_iter().map(str::to_string))
        .chain(graph.output.iter().map(|o| o.name().to_string()))
        .collect();
    graph.initializer.retain(|t| used.contains(t.name()));
}

/// Whether `n` is a MatMul on a constant 2-D float weight (what `weight_matmuls` lists).
pub fn is_weight_matmul(
    n: &NodeProto,
    initializers: &[TensorProto],
    index: &HashMap<String, usize>,
) -> bool {
    n.op_type() == "MatMul"
        && n.input.len() == 2
        && index.get(&n.input[1]).is_some_and(|&i| {
            let w = &initializers[i];
            w.data_type() == DataType::Float as i32 && w.dims.len() == 2 && !w.dims.contains(&0)
        })
}
