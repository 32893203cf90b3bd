//! Lowering for integer kernels: a 1-D convolution becomes im2col and a MatMul, so the quantizing
//! rewrites turn it into an int8 MatMul as they do every projection.
//!
//! ONNX Runtime's CPU `Conv` is float only (ConvInteger has no per-channel weights and no fused
//! dequantization), and Whisper's two stems are 7 % of its INT8 encoder. Lowered, the stem reads
//! channel-last `[batch, time, channels]`: the `k` taps are strided Slices of the padded input,
//! concatenated along channels into `[batch, time out, k · channels]`, times the weight laid out
//! `[k · channels, out channels]`. The layout is turned back with a Transpose, and Transpose pairs
//! around an elementwise op (the stems' GELU) are then cancelled, so the stem costs one transpose of the
//! spectrogram.
//!
//! A convolution on the graph's input (the raw features) is left in float: see [`lower_convs`].
//!
//! Only worth it where the MatMul will be quantized: in float, ONNX Runtime's Conv is faster than the
//! lowered form, so the `fused` recipe keeps its convolutions.

use std::collections::HashMap;

use crate::onnx::attr::{int, ints};
use crate::onnx::proto::{tensor_proto::DataType, GraphProto, ModelProto, NodeProto, TensorProto};

use super::fuse::{int_attr, ints_attr};
use super::graph::{f32_tensor, i64_tensor, label, node};
use super::{float_data, QuantError};

/// The key lowered convolutions are counted under in a part's fusions.
pub const FUSION: &str = "im2col MatMul (Conv1d)";

/// What lowering does, as recorded in a sidecar's parameters.
pub const DESCRIPTION: &str = "Conv1d (group 1, constant weight) → strided Slices + Concat (im2col, channel-last) + MatMul, quantized as the other MatMuls";

/// Ops that act on each element alone, so a transpose may move across them.
const ELEMENTWISE: [(&str, &str); 4] = [
    ("Gelu", super::fuse::CONTRIB_DOMAIN),
    ("Relu", ""),
    ("Erf", ""),
    ("Tanh", ""),
];

/// One convolution to lower, read off its node and weight.
struct Conv1d {
    node: usize,
    input: String,
    output: String,
    weight: String,
    bias: Option<String>,
    out_channels: usize,
    in_channels: usize,
    kernel: usize,
    stride: i64,
    dilation: i64,
    pads: [i64; 2],
    name: String,
}

/// A `Conv` with one spatial axis, explicit pads, one group and a constant float weight.
fn match_conv1d(
    n: &NodeProto,
    index: usize,
    inits: &HashMap<&str, &TensorProto>,
) -> Option<Conv1d> {
    if n.op_type() != "Conv" || !n.domain().is_empty() || n.output.len() != 1 {
        return None;
    }
    let w = inits.get(n.input.get(1)?.as_str())?;
    if w.data_type() != DataType::Float as i32
        || w.dims.len() != 3
        || w.dims.iter().any(|&d| d <= 0)
    {
        return None;
    }
    let bias = match n.input.get(2).map(String::as_str) {
        None | Some("") => None,
        Some(b) => {
            let t = inits.get(b)?;
            if t.data_type() != DataType::Float as i32 || t.dims != [w.dims[0]] {
                return None;
            }
            Some(b.to_string())
        }
    };
    let one = |name: &str| match ints_attr(n, name) {
        None => Some(1),
        Some(v) if v.len() == 1 && v[0] >= 1 => Some(v[0]),
        Some(_) => None,
    };
    if int_attr(n, "group").unwrap_or(1) != 1 {
        return None;
    }
    if n.attribute
        .iter()
        .find(|a| a.name() == "auto_pad")
        .is_some_and(|a| a.s() != b"NOTSET")
    {
        return None;
    }
    let pads = match ints_attr(n, "pads").as_deref() {
        None => [0, 0],
        Some([a, b]) if *a >= 0 && *b >= 0 => [*a, *b],
        Some(_) => return None,
    };
    let kernel = w.dims[2] as usize;
    if ints_attr(n, "kernel_shape").is_some_and(|k| k != [w.dims[2]]) {
        return None;
    }
    Some(Conv1d {
        node: index,
        input: n.input[0].clone(),
        output: n.output[0].clone(),
        weight: w.name().to_string(),
        bias,
        out_channels: w.dims[0] as usize,
        in_channels: w.dims[1] as usize,
        kernel,
        stride: one("strides")?,
        dilation: one("dilations")?,
        pads,
        name: label(n),
    })
}

/// The nodes and initializers replacing `c`; `w` is its weight `[out, in, k]`.
fn lowered(c: &Conv1d, w: &[f32]) -> (Vec<NodeProto>, Vec<TensorProto>) {
    let p = &c.name;
    let v = |s: &str| format!("{p}/im2col/{s}");
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut t = node(
        "Transpose",
        v("Transpose_in"),
        vec![c.input.clone()],
        vec![v("channel_last")],
    );
    t.attribute = vec![ints("perm", &[0, 2, 1])];
    nodes.push(t);
    let mut padded = v("channel_last");
    if c.pads != [0, 0] {
        inits.push(i64_tensor(&v("pads"), &[0, c.pads[0], 0, 0, c.pads[1], 0]));
        nodes.push(node(
            "Pad",
            v("Pad"),
            vec![padded, v("pads")],
            vec![v("padded")],
        ));
        padded = v("padded");
    }
    // Tap j reads positions j·d, j·d + s, …, stopping (k − 1 − j)·d before the end, so every tap has
    // floor((T − (k − 1)·d − 1) / s) + 1 positions, the convolution's output length.
    let mut taps = Vec::new();
    inits.push(i64_tensor(&v("axis"), &[1]));
    inits.push(i64_tensor(&v("step"), &[c.stride]));
    for j in 0..c.kernel as i64 {
        let before_end = (c.kernel as i64 - 1 - j) * c.dilation;
        let end = if before_end == 0 {
            i64::MAX
        } else {
            -before_end
        };
        inits.push(i64_tensor(&v(&format!("start{j}")), &[j * c.dilation]));
        inits.push(i64_tensor(&v(&format!("end{j}")), &[end]));
        nodes.push(node(
            "Slice",
            v(&format!("Slice{j}")),
            vec![
                padded.clone(),
                v(&format!("start{j}")),
                v(&format!("end{j}")),
                v("axis"),
                v("step"),
            ],
            vec![v(&format!("tap{j}"))],
        ));
        taps.push(v(&format!("tap{j}")));
    }
    let mut concat = node("Concat", v("Concat"), taps, vec![v("columns")]);
    concat.attribute = vec![int("axis", 2)];
    nodes.push(concat);

    // Row j·C + c of the lowered weight is tap j of input channel c.
    let (o_n, c_n, k_n) = (c.out_channels, c.in_channels, c.kernel);
    let mut lw = vec![0f32; k_n * c_n * o_n];
    for o in 0..o_n {
        for ci in 0..c_n {
            for j in 0..k_n {
                lw[(j * c_n + ci) * o_n + o] = w[(o * c_n + ci) * k_n + j];
            }
        }
    }
    let weight = format!("{}/im2col", c.weight);
    inits.push(f32_tensor(
        &weight,
        vec![(k_n * c_n) as i64, o_n as i64],
        &lw,
    ));
    let product = if c.bias.is_some() {
        v("product")
    } else {
        v("result")
    };
    nodes.push(node(
        "MatMul",
        format!("{p}/im2col/MatMul"),
        vec![v("columns"), weight],
        vec![product.clone()],
    ));
    if let Some(b) = &c.bias {
        nodes.push(node(
            "Add",
            v("Add"),
            vec![product, b.clone()],
            vec![v("result")],
        ));
    }
    let mut back = node(
        "Transpose",
        v("Transpose_out"),
        vec![v("result")],
        vec![c.output.clone()],
    );
    back.attribute = vec![ints("perm", &[0, 2, 1])];
    nodes.push(back);
    (nodes, inits)
}

/// Lowers every 1-D convolution of `model`'s main graph whose lowered MatMul `ignored` does not exclude
/// (nor the Conv itself); returns how many.
///
/// A convolution reading a graph input stays float: its columns would be the raw features (Whisper's
/// log-mel spectrogram) in 8 bits. Lowering both of tiny.en's stems took its dynamic INT8 WER on the
/// bundled speech from 7.66 % to 9.79 %; the second alone left it at 7.66 %.
pub fn lower_convs(
    model: &mut ModelProto,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Result<usize, QuantError> {
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let convs: Vec<Conv1d> = {
        let inits: HashMap<&str, &TensorProto> =
            graph.initializer.iter().map(|t| (t.name(), t)).collect();
        let inputs: std::collections::HashSet<&str> =
            graph.input.iter().map(|i| i.name()).collect();
        graph
            .node
            .iter()
            .enumerate()
            .filter(|(_, n)| !ignored(n))
            .filter_map(|(i, n)| match_conv1d(n, i, &inits))
            .filter(|c| !inputs.contains(c.input.as_str()))
            .filter(|c| {
                let probe = node(
                    "MatMul",
                    format!("{}/im2col/MatMul", c.name),
                    vec![],
                    vec![],
                );
                !ignored(&probe)
            })
            .collect()
    };
    if convs.is_empty() {
        return Ok(0);
    }
    let mut replacement: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    for c in &convs {
        let w = graph
            .initializer
            .iter()
            .find(|t| t.name() == c.weight)
            .ok_or_else(|| QuantError::Tensor(format!("initializer `{}` is gone", c.weight)))?;
        let (nodes, inits) = lowered(c, &float_data(w)?);
        graph.initializer.extend(inits);
        replacement.insert(c.node, nodes);
    }
    let old = std::mem::take(&mut graph.node);
    for (i, n) in old.into_iter().enumerate() {
        match replacement.remove(&i) {
            Some(nodes) => graph.node.extend(nodes),
            None => graph.node.push(n),
        }
    }
    cancel_transposes(graph);
    super::graph::drop_unused_initializers(graph);
    Ok(convs.len())
}

fn perm(n: &NodeProto) -> Option<Vec<i64>> {
    (n.op_type() == "Transpose" && n.domain().is_empty())
        .then(|| ints_attr(n, "perm"))
        .flatten()
}

/// Removes `Transpose(p) → [one elementwise op] → Transpose(p⁻¹)` pairs where the values between are
/// read by nothing else: the elementwise op then reads the first transpose's input and writes the
/// second's output.
fn cancel_transposes(graph: &mut GraphProto) {
    loop {
        let outputs: std::collections::HashSet<&str> =
            graph.output.iter().map(|o| o.name()).collect();
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for x in super::graph::reads(n) {
                readers.entry(x).or_default().push(i);
            }
        }
        let sole = |value: &str| -> Option<usize> {
            match readers.get(value).map(Vec::as_slice) {
                Some([r]) if !outputs.contains(value) => Some(*r),
                _ => None,
            }
        };
        let found = graph.node.iter().enumerate().find_map(|(ti, t)| {
            let p = perm(t)?;
            let ei = sole(t.output.first()?)?;
            let e = &graph.node[ei];
            if !ELEMENTWISE
                .iter()
                .any(|(op, d)| e.op_type() == *op && e.domain() == *d)
                || e.input.len() != 1
                || e.output.len() != 1
            {
                return None;
            }
            let bi = sole(&e.output[0])?;
            let q = perm(&graph.node[bi])?;
            let inverse = q.len() == p.len()
                && (0..p.len()).all(|i| {
                    usize::try_from(p[i]).ok().and_then(|a| q.get(a)) == Some(&(i as i64))
                });
            inverse.then_some((ti, ei, bi))
        });
        let Some((ti, ei, bi)) = found else {
            return;
        };
        let source = graph.node[ti].input[0].clone();
        let target = graph.node[bi].output[0].clone();
        let e = &mut graph.node[ei];
        e.input[0] = source;
        e.output[0] = target;
        let mut i = 0;
        graph.node.retain(|_| {
            i += 1;
            i - 1 != ti && i - 1 != bi
        });
    }
}
