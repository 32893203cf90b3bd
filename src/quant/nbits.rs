//! The vocabulary projection in block-wise 8-bit weights (`com.microsoft.MatMulNBits`).
//!
//! A decoder step multiplies one token's state by the [d, vocab] projection: a matrix-vector product whose
//! time is the weight's bytes. ONNX Runtime's MatMulNBits (8 bits, blocks of up to 128 rows per column,
//! `accuracy_level` 4: activations quantized to int8 per block at run time) runs it ≈ 1.6× faster than
//! DynamicQuantizeLinear → MatMulInteger on this CPU, and with an error below per-column int8's, since
//! every 128 rows of a column have their own scale. At many rows (an encoder's 1500 positions) the same op
//! is ≈ 2× slower than MatMulInteger, so only a projection onto a graph output with a vocabulary-sized
//! width is rewritten.

use crate::onnx::attr::int;
use crate::onnx::proto::{tensor_proto::DataType, ModelProto, NodeProto, TensorProto};

use super::fuse::CONTRIB_DOMAIN;
use super::graph::{f32_tensor, label, node, weight_matmuls};
use super::qmath::quantize_blocks_u8;
use super::{float_data, QuantError};

/// Narrowest output that counts as a vocabulary (Whisper's and BLIP's are 51 864 and 30 524).
pub const MIN_COLUMNS: usize = 8192;

/// Block sizes tried, largest first; the first that divides the weight's rows is used.
const BLOCKS: [usize; 4] = [128, 64, 32, 16];

/// What the rewrite does, as recorded in a sidecar's parameters.
pub const DESCRIPTION: &str = "a MatMul onto a graph output at least 8192 wide (the vocabulary projection): com.microsoft.MatMulNBits, 8-bit weights symmetric per column and block of 128 rows, activations int8 per block at run time (accuracy_level 4)";

/// Rewrites the vocabulary projections of `model` that `ignored` does not exclude; returns their labels.
pub fn rewrite(
    model: &mut ModelProto,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Result<Vec<String>, QuantError> {
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let outputs: std::collections::HashSet<&str> = graph.output.iter().map(|o| o.name()).collect();
    let targets: Vec<_> = weight_matmuls(graph, ignored)
        .into_iter()
        .filter(|m| {
            m.n >= MIN_COLUMNS
                && BLOCKS.iter().any(|b| m.k.is_multiple_of(*b))
                && graph.node[m.node]
                    .output
                    .first()
                    .is_some_and(|o| outputs.contains(o.as_str()))
        })
        .collect();
    let mut done = Vec::new();
    let mut new_inits: Vec<TensorProto> = Vec::new();
    for m in &targets {
        let block = *BLOCKS
            .iter()
            .find(|b| m.k.is_multiple_of(**b))
            .expect("filtered above");
        let w = graph
            .initializer
            .iter()
            .find(|t| t.name() == m.weight)
            .ok_or_else(|| QuantError::Tensor(format!("initializer `{}` is gone", m.weight)))?;
        let data = float_data(w)?;
        let (q, scales) = quantize_blocks_u8(&data, m.k, m.n, block);
        let blocks = (m.k / block) as i64;
        let (q_name, s_name) = (
            format!("{}_blocks_u8", m.weight),
            format!("{}_block_scales", m.weight),
        );
        new_inits.push(TensorProto {
            name: Some(q_name.clone()),
            dims: vec![m.n as i64, blocks, block as i64],
            data_type: Some(DataType::Uint8 as i32),
            raw_data: Some(q),
            ..Default::default()
        });
        new_inits.push(f32_tensor(&s_name, vec![m.n as i64 * blocks], &scales));
        let old = &graph.node[m.node];
        let name = label(old);
        let mut op = node(
            "MatMulNBits",
            name.clone(),
            vec![m.activation.clone(), q_name, s_name],
            old.output.clone(),
        );
        op.domain = Some(CONTRIB_DOMAIN.into());
        op.attribute = vec![
            int("K", m.k as i64),
            int("N", m.n as i64),
            int("bits", 8),
            int("block_size", block as i64),
            int("accuracy_level", 4),
        ];
        graph.node[m.node] = op;
        done.push(name);
    }
    if !done.is_empty() {
        super::graph::drop_unused_initializers(graph);
        graph.initializer.extend(new_inits);
        super::fuse::declare_contrib_domain(model);
    }
    Ok(done)
}
