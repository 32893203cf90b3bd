//! Fusion: graph rewrites that replace a chain of plain ONNX ops with one of ONNX Runtime's contrib kernels
//! (`com.microsoft`), leaving every graph input, output and weight as it was.
//!
//! Attention: scaled dot-product attention written out as Reshape/Transpose per head, Q·Kᵀ, a scale,
//! Softmax, ·V and the merge of the heads becomes one `MultiHeadAttention`. Its CPU kernel tiles the scores
//! (flash attention) when there is no mask, no cache and no `present` output, so an encoder's
//! heads × 1500 × 1500 scores are never written: Whisper's encoder and BLIP's vision model.
//!
//! GELU: exact GELU written out as `0.5 · x · (1 + erf(x / √2))` becomes one `Gelu` (ONNX Runtime's own
//! optimizer matches only the Div-by-√2 form; in tiny.en's INT8 encoder the five kernels took 12.8 ms
//! a window, `Gelu` 5.6 ms).
//!
//! Not fused, because it did not pay: residual Add + LayerNormalization as `SkipLayerNormalization`. Its
//! CPU kernel took 14.2 ms for the encoder's 8 norms (1500 × 384) against 6.7 ms for Add and
//! LayerNormalization, and saved ≈ 0.05 ms of a 4 ms decoder step.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::onnx::attr::{float, int};
use crate::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto,
};

use super::graph::node;
use super::QuantError;

pub const CONTRIB_DOMAIN: &str = "com.microsoft";

/// What fusion does, as recorded in a sidecar's parameters.
pub const DESCRIPTION: &str = "unmasked self-attention without a cache (encoders) → com.microsoft.MultiHeadAttention (flash attention on CPU); erf GELU → com.microsoft.Gelu";

/// How many chains each fusion replaced, by the contrib op that replaced them.
pub type Fusions = BTreeMap<String, usize>;

/// Applies every fusion to the main graph of `model`; returns what it replaced.
pub fn fuse(model: &mut ModelProto) -> Result<Fusions, QuantError> {
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let mut fusions = Fusions::new();
    let attention = fuse_attention(graph);
    let gelu = fuse_gelu(graph);
    for (op, n) in [("MultiHeadAttention", attention), ("Gelu", gelu)] {
        if n > 0 {
            fusions.insert(op.into(), n);
        }
    }
    if !fusions.is_empty() {
        remove_dead_nodes(graph);
        topological_sort(graph)?;
        declare_contrib_domain(model);
    }
    Ok(fusions)
}

/// Adds ONNX Runtime's contrib domain to the model's opsets if it is not there.
pub(super) fn declare_contrib_domain(model: &mut ModelProto) {
    if !model
        .opset_import
        .iter()
        .any(|o| o.domain() == CONTRIB_DOMAIN)
    {
        model.opset_import.push(OperatorSetIdProto {
            domain: Some(CONTRIB_DOMAIN.into()),
            version: Some(1),
        });
    }
}

/// A read-only view of a graph for matching: who makes each value, who reads it, the constants.
pub(super) struct View<'a> {
    pub(super) graph: &'a GraphProto,
    producer: HashMap<&'a str, usize>,
    readers: HashMap<&'a str, usize>,
    inits: HashMap<&'a str, &'a TensorProto>,
    outputs: HashSet<&'a str>,
}

impl<'a> View<'a> {
    pub(super) fn new(graph: &'a GraphProto) -> Self {
        let mut producer = HashMap::new();
        let mut readers: HashMap<&str, usize> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for o in &n.output {
                producer.insert(o.as_str(), i);
            }
            for x in super::graph::reads(n) {
                *readers.entry(x).or_default() += 1;
            }
        }
        View {
            graph,
            producer,
            readers,
            inits: graph.initializer.iter().map(|t| (t.name(), t)).collect(),
            outputs: graph.output.iter().map(|v| v.name()).collect(),
        }
    }

    /// The node making `value`, if it is `op`.
    pub(super) fn made_by(&self, value: &str, op: &str) -> Option<&'a NodeProto> {
        let n = &self.graph.node[*self.producer.get(value)?];
        (n.op_type() == op && n.domain().is_empty()).then_some(n)
    }

    /// The one node reading `value` (at any input), if `value` is private and that node is `op`.
    pub(super) fn reader(&self, value: &str, op: &str) -> Option<(usize, &'a NodeProto)> {
        if !self.private(value) {
            return None;
        }
        self.graph.node.iter().enumerate().find(|(_, n)| {
            n.op_type() == op && n.domain().is_empty() && n.input.iter().any(|x| x == value)
        })
    }

    /// The other input of a two-input node that reads `value`.
    fn other<'n>(n: &'n NodeProto, value: &str) -> Option<&'n str> {
        match n.input.as_slice() {
            [a, b] if a == value => Some(b),
            [a, b] if b == value => Some(a),
            _ => None,
        }
    }

    /// The one node reading `value` as its first input, if `value` is private and that node is `op`.
    pub(super) fn sole_reader(&self, value: &str, op: &str) -> Option<(usize, &'a NodeProto)> {
        if !self.private(value) {
            return None;
        }
        self.graph.node.iter().enumerate().find(|(_, n)| {
            n.op_type() == op
                && n.domain().is_empty()
                && n.input.first().map(String::as_str) == Some(value)
        })
    }

    /// Whether `value` is read by exactly one node and is no graph output (so its chain may go).
    pub(super) fn private(&self, value: &str) -> bool {
        self.readers.get(value) == Some(&1) && !self.outputs.contains(value)
    }

    /// An initializer's tensor.
    pub(super) fn initializer(&self, value: &str) -> Option<&'a TensorProto> {
        self.inits.get(value).copied()
    }

    /// A constant's tensor: an initializer or a `Constant` node's `value`.
    pub(super) fn constant(&self, value: &str) -> Option<&'a TensorProto> {
        if let Some(t) = self.inits.get(value) {
            return Some(t);
        }
        let n = self.made_by(value, "Constant")?;
        n.attribute
            .iter()
            .find(|a| a.name() == "value")
            .and_then(|a| a.t.as_ref())
    }

    pub(super) fn i64s(&self, value: &str) -> Option<Vec<i64>> {
        let t = self.constant(value)?;
        if t.data_type() != DataType::Int64 as i32 {
            return None;
        }
        match &t.raw_data {
            Some(raw) if raw.len() % 8 == 0 => Some(
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
            ),
            Some(_) => None,
            None => Some(t.int64_data.clone()),
        }
    }

    /// A float constant holding one value (any shape of one element).
    pub(super) fn scalar(&self, value: &str) -> Option<f32> {
        let t = self.constant(value)?;
        if t.data_type() != DataType::Float as i32 || t.dims.iter().product::<i64>() != 1 {
            return None;
        }
        match &t.raw_data {
            Some(raw) if raw.len() == 4 => Some(f32::from_le_bytes(raw[..4].try_into().ok()?)),
            Some(_) => None,
            None => t.float_data.first().copied(),
        }
    }

    /// `Mul(x, c)` / `Mul(c, x)` with a scalar constant c: (x, c).
    pub(super) fn scaled(&self, value: &str) -> Option<(&'a str, f32)> {
        let n = self.made_by(value, "Mul")?;
        if n.input.len() != 2 {
            return None;
        }
        match (self.scalar(&n.input[0]), self.scalar(&n.input[1])) {
            (None, Some(c)) => Some((n.input[0].as_str(), c)),
            (Some(c), None) => Some((n.input[1].as_str(), c)),
            _ => None,
        }
    }
}

pub(super) fn ints_attr(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    n.attribute
        .iter()
        .find(|a| a.name() == name && a.r#type() == AttributeType::Ints)
        .map(|a| a.ints.clone())
}

pub(super) fn int_attr(n: &NodeProto, name: &str) -> Option<i64> {
    n.attribute
        .iter()
        .find(|a| a.name() == name && a.r#type() == AttributeType::Int)
        .and_then(|a| a.i)
}

/// Heads and head size of a per-head split `Transpose(perm 0,2,1,3) ∘ Reshape(x, [b, t, N, H])`: (x, N, H).
fn split_heads<'a>(v: &View<'a>, value: &str) -> Option<(&'a str, i64, i64)> {
    let t = v.made_by(value, "Transpose")?;
    if ints_attr(t, "perm")? != [0, 2, 1, 3] {
        return None;
    }
    let r = v.made_by(t.input.first()?, "Reshape")?;
    let shape = v.i64s(r.input.get(1)?)?;
    (shape.len() == 4 && shape[2] > 0 && shape[3] > 0 && v.private(&t.input[0]))
        .then(|| (r.input[0].as_str(), shape[2], shape[3]))
}

/// Per-head keys or values [B, N, L, H] split from projections [B, L, D] with the query's heads, read
/// by nothing else: the projections.
fn projected<'a>(v: &View<'a>, value: &str, heads: (i64, i64)) -> Option<&'a str> {
    let (x, n, h) = split_heads(v, value)?;
    ((n, h) == heads && v.private(value)).then_some(x)
}

/// One matched attention.
#[derive(Debug)]
struct Attention {
    query: String,
    key: String,
    value: String,
    scale: f32,
    heads: i64,
    output: String,
    /// The node making `output` (replaced by the fused op).
    merge: usize,
    name: String,
}

/// Matches the attention whose Softmax is node `si`, in the form the fused kernel's flash path takes:
/// keys and values projected from [B, L, D] values, no mask, no cache, no `present` output.
///
/// Decoder attention (an additive causal mask, a cache concatenated with the new step, cross-attention
/// over per-head cached keys) goes through the same op correctly, but on this CPU it was slower per step
/// than ONNX Runtime's own MatMul/Softmax kernels (cross-attention over 1500 keys 0.13 vs 0.07 ms a layer,
/// self-attention with a 32-token cache even), so those forms are left as they are.
fn match_attention(v: &View, si: usize) -> Option<Attention> {
    let sm = &v.graph.node[si];
    if sm.op_type() != "Softmax" || !sm.domain().is_empty() {
        return None;
    }
    if !matches!(int_attr(sm, "axis"), None | Some(-1) | Some(3)) {
        return None;
    }
    let probs = sm.output.first()?;
    let mut scores = sm.input.first()?.as_str();
    let mut scale = 1.0f32;
    if let Some((x, c)) = v.scaled(scores).filter(|_| v.private(scores)) {
        scale *= c;
        scores = x;
    } else if let Some(d) = v.made_by(scores, "Div").filter(|_| v.private(scores)) {
        scale /= v.scalar(d.input.get(1)?)?;
        scores = d.input.first()?.as_str();
    }
    if !v.private(scores) {
        return None;
    }
    let qk = v.made_by(scores, "MatMul")?;
    let (qh, kt) = (qk.input.first()?, qk.input.get(1)?);
    if !v.private(qh) || !v.private(kt) {
        return None;
    }
    let (mut query, heads, head_size) = split_heads(v, qh)?;
    if let Some((x, c)) = v.scaled(query).filter(|_| v.private(query)) {
        scale *= c;
        query = x;
    }
    let t = v.made_by(kt, "Transpose")?;
    let key = match ints_attr(t, "perm")?.as_slice() {
        [0, 1, 3, 2] => projected(v, t.input.first()?, (heads, head_size))?,
        [0, 2, 3, 1] => {
            let r = v.made_by(t.input.first()?, "Reshape")?;
            let shape = v.i64s(r.input.get(1)?)?;
            (shape.len() == 4 && shape[2..] == [heads, head_size] && v.private(&t.input[0]))
                .then_some(r.input[0].as_str())?
        }
        _ => return None,
    };

    // probs · V, heads merged: Transpose(0,2,1,3) then Reshape to [b, t, N·H].
    let (_, pv) = v.sole_reader(probs, "MatMul")?;
    let value = projected(v, pv.input.get(1)?, (heads, head_size))?;
    let (_, tn) = v.sole_reader(pv.output.first()?, "Transpose")?;
    if ints_attr(tn, "perm")? != [0, 2, 1, 3] {
        return None;
    }
    let (merge, rn) = v.sole_reader(tn.output.first()?, "Reshape")?;
    let merged = v.i64s(rn.input.get(1)?)?;
    if merged.len() != 3 || merged[2] != heads * head_size {
        return None;
    }
    let output = rn.output.first()?.clone();
    Some(Attention {
        query: query.to_string(),
        key: key.to_string(),
        value: value.to_string(),
        scale,
        heads,
        name: format!(
            "{}/MultiHeadAttention",
            if rn.name().is_empty() {
                &output
            } else {
                rn.name()
            }
        ),
        output,
        merge,
    })
}

/// Replaces every matched attention; returns how many.
fn fuse_attention(graph: &mut GraphProto) -> usize {
    let matches: Vec<Attention> = {
        let v = View::new(graph);
        (0..graph.node.len())
            .filter_map(|i| match_attention(&v, i))
            .collect()
    };
    let merges: HashSet<usize> = matches.iter().map(|m| m.merge).collect();
    let mut nodes: Vec<NodeProto> = std::mem::take(&mut graph.node)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !merges.contains(i))
        .map(|(_, n)| n)
        .collect();
    for m in &matches {
        let mut mha = node(
            "MultiHeadAttention",
            m.name.clone(),
            vec![m.query.clone(), m.key.clone(), m.value.clone()],
            vec![m.output.clone()],
        );
        mha.domain = Some(CONTRIB_DOMAIN.into());
        mha.attribute = vec![int("num_heads", m.heads), float("scale", m.scale)];
        nodes.push(mha);
    }
    graph.node = nodes;
    matches.len()
}

/// Whether `a` is `b` to single precision's rounding of the constant as exporters write it.
fn near(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * b.abs()
}

/// Matches the exact GELU ending at the Erf node `ei`: (x, the node making the result, its name).
///
/// `s = x / √2` (Mul by 1/√2 or Div by √2) → `Erf` → `+ 1` → `· x` → `· 0.5`, or with the half taken
/// first (`(0.5 · x) · (1 + erf)`), as PyTorch's exporter and this project's exporter write it.
fn match_gelu<'a>(v: &View<'a>, ei: usize) -> Option<(&'a str, usize)> {
    let erf = &v.graph.node[ei];
    if erf.op_type() != "Erf" || !erf.domain().is_empty() {
        return None;
    }
    let s = erf.input.first()?.as_str();
    let x = match v.scaled(s) {
        Some((x, c)) if near(c, std::f32::consts::FRAC_1_SQRT_2) => x,
        Some(_) => return None,
        None => {
            let d = v.made_by(s, "Div")?;
            near(v.scalar(d.input.get(1)?)?, std::f32::consts::SQRT_2)
                .then(|| d.input.first().map(String::as_str))??
        }
    };
    if !v.private(s) {
        return None;
    }
    let (_, add) = v.reader(erf.output.first()?, "Add")?;
    if !near(v.scalar(View::other(add, &erf.output[0])?)?, 1.0) {
        return None;
    }
    let one_plus = add.output.first()?.as_str();
    let (mi, m) = v.reader(one_plus, "Mul")?;
    let factor = View::other(m, one_plus)?;
    if factor == x {
        // (x · (1 + erf)) · 0.5
        let xe = m.output.first()?.as_str();
        let (hi, h) = v.reader(xe, "Mul")?;
        near(v.scalar(View::other(h, xe)?)?, 0.5).then_some((x, hi))
    } else {
        // (0.5 · x) · (1 + erf)
        let (hx, c) = v.scaled(factor)?;
        (hx == x && near(c, 0.5) && v.private(factor)).then_some((x, mi))
    }
}

/// Replaces every matched GELU; returns how many.
fn fuse_gelu(graph: &mut GraphProto) -> usize {
    let matches: Vec<(String, usize)> = {
        let v = View::new(graph);
        (0..graph.node.len())
            .filter_map(|i| match_gelu(&v, i))
            .map(|(x, end)| (x.to_string(), end))
            .collect()
    };
    for (x, end) in &matches {
        let last = &mut graph.node[*end];
        let name = format!(
            "{}/Gelu",
            if last.name().is_empty() {
                last.output[0].as_str()
            } else {
                last.name()
            }
        );
        let mut gelu = node("Gelu", name, vec![x.clone()], vec![last.output[0].clone()]);
        gelu.domain = Some(CONTRIB_DOMAIN.into());
        *last = gelu;
    }
    matches.len()
}

/// Drops nodes none of whose outputs is read or is a graph output, until none is left, then the
/// initializers nothing reads.
pub(super) fn remove_dead_nodes(graph: &mut GraphProto) {
    loop {
        let needed: HashSet<String> = graph
            .node
            .iter()
            .flat_map(|n| super::graph::reads(n).into_iter().map(str::to_string))
            .chain(graph.output.iter().map(|o| o.name().to_string()))
            .collect();
        let before = graph.node.len();
        graph
            .node
            .retain(|n| n.output.iter().any(|o| !o.is_empty() && needed.contains(o)));
        if graph.node.len() == before {
            break;
        }
    }
    super::graph::drop_unused_initializers(graph);
}

/// Orders nodes so each comes after the producers of its inputs (stable: ties keep their order).
pub(super) fn topological_sort(graph: &mut GraphProto) -> Result<(), QuantError> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for o in &n.output {
            producer.insert(o.as_str(), i);
        }
    }
    let count = graph.node.len();
    let mut waiting = vec![0usize; count];
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (i, n) in graph.node.iter().enumerate() {
        let mut seen = HashSet::new();
        for x in super::graph::reads(n) {
            if let Some(&p) = producer.get(x) {
                if p != i && seen.insert(p) {
                    waiting[i] += 1;
                    dependants[p].push(i);
                }
            }
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..count)
        .filter(|&i| waiting[i] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(count);
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &dependants[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(std::cmp::Reverse(d));
            }
        }
    }
    if order.len() != count {
        return Err(QuantError::Tensor(
            "fusion left a cycle in the graph".into(),
        ));
    }
    let mut old: Vec<Option<NodeProto>> = std::mem::take(&mut graph.node)
        .into_iter()
        .map(Some)
        .collect();
    graph.node = order
        .into_iter()
        .map(|i| old[i].take().expect("each node once"))
        .collect();
    Ok(())
}
