//! Cross-attention absorbed into its queries: a decoding step that projects the encoder's states to keys
//! and values on every call stops projecting them.
//!
//! BLIP's text decoder takes the encoder's states (577 image tokens when captioning) at every step and
//! projects them anew: 2 · 577 · 768 · 768 multiply-adds a layer for one new token, 16 GFLOP a step. With
//! the projections written per head, scores and context are linear in the states `X`:
//! `q·(X·Wk + bk)ᵀ = (q·Wkᵀ)·Xᵀ + q·bkᵀ` and `p·(X·Wv + bv) = (p·X)·Wv + bv` (a softmax row sums to one), so
//! the step multiplies its few queries by the weights and then by `X`: heads · tokens · 2 · 768 · (64 + 577)
//! a layer, 64× less at one new token. The products are the same sums in another order (max abs
//! difference ~1e-7 on the decoder's logits).
//!
//! Worth it only while the queries are few, so only a decoding step is rewritten (a graph taking
//! `past_key_values.*`, optimum's cache inputs): its queries are the new tokens. An encoder's
//! cross-attention (BLIP's question encoder: every question token a query) is left as it is.
//!
//! In the weight-only recipe the absorbed weights stay int8: stored per head as `[heads, rows, columns]`,
//! dequantized with scale 1 (ONNX Runtime does not fold DequantizeLinear into a float constant), their
//! per-column scales applied to the few query or context rows instead.

use std::collections::HashMap;

use crate::onnx::attr::ints;
use crate::onnx::proto::{tensor_proto::DataType, ModelProto, NodeProto, TensorProto};

use super::fuse::{int_attr, ints_attr, remove_dead_nodes, topological_sort, View};
use super::graph::{f32_tensor, i64_tensor, i8_tensor, label, node};
use super::qmath::quantize_per_column_i8;
use super::{float_data, QuantError};

/// The key absorbed projections are counted under in a part's fusions.
pub const FUSION: &str = "cross-attention absorbed (keys/values not projected)";

/// What absorbing does, as recorded in a sidecar's parameters.
pub const DESCRIPTION: &str = "in a decoding step, cross-attention keys and values projected from the encoder's states → the query multiplied by the key weights and the attention-weighted states by the value weights (the projections of every encoder token never computed)";

/// How the absorbed weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    Float,
    /// int8 per output column, as the weight-only recipe stores every weight.
    Int8,
}

/// Whether `model` is a decoding step: it takes optimum's cache inputs, so its queries are new tokens.
pub fn is_decoding_step(model: &ModelProto) -> bool {
    model.graph.as_ref().is_some_and(|g| {
        g.input
            .iter()
            .any(|i| i.name().starts_with("past_key_values."))
    })
}

/// A per-head projection `Reshape(MatMul(x, W) + b, [0, 0|-1, heads, size])` read by nothing else.
struct Projection<'a> {
    states: String,
    weight: &'a TensorProto,
    bias: Option<&'a TensorProto>,
    heads: usize,
    size: usize,
    /// Rows of the weight: the states' width.
    width: usize,
    matmul: &'a NodeProto,
}

/// The projection that `Reshape` output `value` splits into heads.
fn projection<'a>(v: &View<'a>, value: &str) -> Option<Projection<'a>> {
    let r = v.made_by(value, "Reshape")?;
    let shape = v.i64s(r.input.get(1)?)?;
    let [0, 0 | -1, heads, size] = shape[..] else {
        return None;
    };
    if heads <= 0 || size <= 0 || !v.private(value) {
        return None;
    }
    let projected = r.input.first()?.as_str();
    if !v.private(projected) {
        return None;
    }
    let (product, bias) = match v.made_by(projected, "Add") {
        Some(add) => {
            let (a, b) = (add.input.first()?, add.input.get(1)?);
            let (product, bias) = if v.made_by(a, "MatMul").is_some() {
                (a, b)
            } else {
                (b, a)
            };
            let t = v.initializer(bias)?;
            let columns = heads.checked_mul(size)?;
            (t.data_type() == DataType::Float as i32 && t.dims == [columns])
                .then_some((product.as_str(), Some(t)))?
        }
        None => (projected, None),
    };
    if !v.private(product) {
        return None;
    }
    let mm = v.made_by(product, "MatMul")?;
    let w = v.initializer(mm.input.get(1)?)?;
    if w.data_type() != DataType::Float as i32
        || w.dims.len() != 2
        || w.dims[0] <= 0
        || Some(w.dims[1]) != heads.checked_mul(size)
    {
        return None;
    }
    Some(Projection {
        states: mm.input.first()?.clone(),
        weight: w,
        bias,
        heads: heads as usize,
        size: size as usize,
        width: w.dims[0] as usize,
        matmul: mm,
    })
}

/// The keys of scores `MatMul(q, kᵀ)` node `n`: kᵀ a per-head projection transposed to `[b, heads, size, t]`.
fn keys<'a>(v: &View<'a>, n: &NodeProto) -> Option<Projection<'a>> {
    let kt = n.input.get(1)?;
    let t = v.made_by(kt, "Transpose")?;
    if !v.private(kt) {
        return None;
    }
    let split = match ints_attr(t, "perm")?.as_slice() {
        [0, 1, 3, 2] => {
            let inner = v.made_by(t.input.first()?, "Transpose")?;
            (ints_attr(inner, "perm")? == [0, 2, 1, 3] && v.private(&t.input[0]))
                .then(|| inner.input.first())??
        }
        [0, 2, 3, 1] => t.input.first()?,
        _ => return None,
    };
    projection(v, split)
}

/// The values of context `MatMul(p, v)` node `n`: p a Softmax over the last axis, v a per-head projection
/// transposed to `[b, heads, t, size]`.
fn values<'a>(v: &View<'a>, n: &NodeProto, opset: i64) -> Option<Projection<'a>> {
    let sm = v.made_by(n.input.first()?, "Softmax")?;
    let last_axis = match int_attr(sm, "axis") {
        Some(a) => a == -1 || a == 3,
        None => opset >= 13,
    };
    let vh = n.input.get(1)?;
    let t = v.made_by(vh, "Transpose")?;
    if !last_axis || !v.private(vh) || ints_attr(t, "perm")? != [0, 2, 1, 3] {
        return None;
    }
    projection(v, t.input.first()?)
}

#[derive(Debug, Clone, Copy)]
enum Side {
    /// Scores: the query times the key weights, per head `[heads, size, width]`.
    Keys,
    /// Context: the weighted states times the value weights, per head `[heads, width, size]`.
    Values,
}

/// `W` `[width, heads · size]` laid out per head for `side`, in `T` (float or int8).
fn per_head<T: Copy>(w: &[T], p: &Projection, side: Side) -> Vec<T> {
    let columns = p.heads * p.size;
    let mut out = Vec::with_capacity(w.len());
    for h in 0..p.heads {
        match side {
            Side::Keys => {
                for j in 0..p.size {
                    out.extend((0..p.width).map(|k| w[k * columns + h * p.size + j]));
                }
            }
            Side::Values => {
                for k in 0..p.width {
                    out.extend_from_slice(&w[k * columns + h * p.size..][..p.size]);
                }
            }
        }
    }
    out
}

/// Absorbs every cross-attention projection of `model`'s graph it can; returns how many. `ignored`
/// nodes' weights stay float.
pub fn absorb(
    model: &mut ModelProto,
    weights: Weights,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Result<usize, QuantError> {
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain().is_empty())
        .and_then(|o| o.version)
        .unwrap_or(1);
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let mut writer = Writer::default();
    let mut replaced = Vec::new();
    {
        let v = View::new(graph);
        for (i, n) in graph.node.iter().enumerate() {
            if n.op_type() != "MatMul" || !n.domain().is_empty() {
                continue;
            }
            let Some((side, p)) = keys(&v, n)
                .map(|p| (Side::Keys, p))
                .or_else(|| values(&v, n, opset).map(|p| (Side::Values, p)))
            else {
                continue;
            };
            let int8 = weights == Weights::Int8 && !ignored(p.matmul);
            writer.write(n, side, &p, int8)?;
            replaced.push(i);
        }
    }
    if replaced.is_empty() {
        return Ok(0);
    }
    let mut kept: Vec<NodeProto> = std::mem::take(&mut graph.node)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !replaced.contains(i))
        .map(|(_, n)| n)
        .collect();
    kept.extend(writer.nodes);
    graph.node = kept;
    graph.initializer.extend(writer.inits);
    remove_dead_nodes(graph);
    topological_sort(graph)?;
    Ok(replaced.len())
}

/// Emits the replacement nodes and constants; the encoder's states are reshaped once per states tensor.
#[derive(Default)]
struct Writer {
    /// States `[b, t, width]` → (`[b, 1, t, width]`, `[b, 1, width, t]`).
    views: HashMap<String, (String, String)>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
}

impl Writer {
    /// The states with a head axis of one, as rows `[b, 1, t, width]` and transposed `[b, 1, width, t]`.
    fn states(&mut self, p: &Projection) -> (String, String) {
        if let Some(v) = self.views.get(&p.states) {
            return v.clone();
        }
        let base = format!("{}/absorbed", p.states);
        let (shape, rows, cols) = (
            format!("{base}/shape"),
            format!("{base}/rows"),
            format!("{base}/transposed"),
        );
        self.inits
            .push(i64_tensor(&shape, &[0, 1, -1, p.width as i64]));
        self.nodes.push(node(
            "Reshape",
            format!("{base}/Reshape"),
            vec![p.states.clone(), shape],
            vec![rows.clone()],
        ));
        let mut t = node(
            "Transpose",
            format!("{base}/Transpose"),
            vec![rows.clone()],
            vec![cols.clone()],
        );
        t.attribute.push(ints("perm", &[0, 1, 3, 2]));
        self.nodes.push(t);
        self.views
            .insert(p.states.clone(), (rows.clone(), cols.clone()));
        (rows, cols)
    }

    /// The per-head weight for `side` as a MatMul operand, and the per-column scales `[heads, 1, size]`
    /// to apply beside it when it is int8.
    fn weight(
        &mut self,
        p: &Projection,
        side: Side,
        int8: bool,
        base: &str,
    ) -> Result<(String, Option<String>), QuantError> {
        let w = float_data(p.weight)?;
        let dims = match side {
            Side::Keys => vec![p.heads as i64, p.size as i64, p.width as i64],
            Side::Values => vec![p.heads as i64, p.width as i64, p.size as i64],
        };
        let name = format!("{base}/weight");
        if !int8 {
            self.inits
                .push(f32_tensor(&name, dims, &per_head(&w, p, side)));
            return Ok((name, None));
        }
        let (q, scales) = quantize_per_column_i8(&w, p.width, p.heads * p.size);
        let (qname, one, zero, scale) = (
            format!("{base}/weight_quantized"),
            format!("{base}/one"),
            format!("{base}/zero"),
            format!("{base}/weight_scale"),
        );
        self.inits
            .push(i8_tensor(&qname, dims, &per_head(&q, p, side)));
        self.inits.push(f32_tensor(&one, vec![], &[1.0]));
        self.inits.push(i8_tensor(&zero, vec![], &[0]));
        self.inits.push(f32_tensor(
            &scale,
            vec![p.heads as i64, 1, p.size as i64],
            &scales,
        ));
        self.nodes.push(node(
            "DequantizeLinear",
            format!("{base}/weight_dequant"),
            vec![qname, one, zero],
            vec![name.clone()],
        ));
        Ok((name, Some(scale)))
    }

    fn write(
        &mut self,
        n: &NodeProto,
        side: Side,
        p: &Projection,
        int8: bool,
    ) -> Result<(), QuantError> {
        let out = n.output[0].clone();
        let base = format!("{}/absorbed", label(n));
        let (rows, transposed) = self.states(p);
        let (weight, scale) = self.weight(p, side, int8, &base)?;
        let v = |s: &str| format!("{base}/{s}");
        match side {
            Side::Keys => {
                let mut query = n.input[0].clone();
                if let Some(s) = &scale {
                    self.nodes.push(node(
                        "Mul",
                        v("query_scaled"),
                        vec![query, s.clone()],
                        vec![v("query_scaled")],
                    ));
                    query = v("query_scaled");
                }
                self.nodes.push(node(
                    "MatMul",
                    v("query_by_weight"),
                    vec![query, weight],
                    vec![v("query_by_weight")],
                ));
                let scores = if p.bias.is_some() {
                    v("scores")
                } else {
                    out.clone()
                };
                self.nodes.push(node(
                    "MatMul",
                    v("scores"),
                    vec![v("query_by_weight"), transposed],
                    vec![scores.clone()],
                ));
                if let Some(bias) = p.bias {
                    let b = self.bias(bias, &[p.heads as i64, p.size as i64, 1], &base)?;
                    self.nodes.push(node(
                        "MatMul",
                        v("query_by_bias"),
                        vec![n.input[0].clone(), b],
                        vec![v("query_by_bias")],
                    ));
                    self.nodes.push(node(
                        "Add",
                        v("scores_biased"),
                        vec![scores, v("query_by_bias")],
                        vec![out],
                    ));
                }
            }
            Side::Values => {
                self.nodes.push(node(
                    "MatMul",
                    v("weighted_states"),
                    vec![n.input[0].clone(), rows],
                    vec![v("weighted_states")],
                ));
                let mut last = v("context");
                self.nodes.push(node(
                    "MatMul",
                    v("context"),
                    vec![v("weighted_states"), weight],
                    vec![last.clone()],
                ));
                if let Some(s) = &scale {
                    self.nodes.push(node(
                        "Mul",
                        v("context_scaled"),
                        vec![last, s.clone()],
                        vec![v("context_scaled")],
                    ));
                    last = v("context_scaled");
                }
                match p.bias {
                    Some(bias) => {
                        let b = self.bias(bias, &[p.heads as i64, 1, p.size as i64], &base)?;
                        self.nodes
                            .push(node("Add", v("context_biased"), vec![last, b], vec![out]));
                    }
                    None => {
                        self.nodes
                            .push(node("Identity", v("context_out"), vec![last], vec![out]))
                    }
                }
            }
        }
        Ok(())
    }

    /// The bias `[heads · size]` reshaped to `dims` (a copy: the bias itself goes with its Add).
    fn bias(&mut self, t: &TensorProto, dims: &[i64], base: &str) -> Result<String, QuantError> {
        let name = format!("{base}/bias");
        self.inits
            .push(f32_tensor(&name, dims.to_vec(), &float_data(t)?));
        Ok(name)
    }
}
