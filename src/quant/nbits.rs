//! The vocabulary projection in block-wise low-bit weights (`com.microsoft.MatMulNBits`).
//!
//! A decoder step multiplies one token's state by the [d, vocab] projection: a matrix-vector product whose
//! time is the weight's bytes. ONNX Runtime's MatMulNBits (blocks of rows per column, `accuracy_level` 4:
//! activations quantized to int8 per block at run time) runs it ≈ 1.6× faster than
//! DynamicQuantizeLinear → MatMulInteger on this CPU in 8 bits. At many rows (an encoder's 1500 positions)
//! the same op is ≈ 2× slower than MatMulInteger, so only a projection onto a graph output with a
//! vocabulary-sized width is rewritten.
//!
//! Where the projection is tied to the token embedding (Whisper's `proj_out` is `embed_tokens`
//! transposed), its weight goes to 4 bits (blocks of 32), half the bytes, and the top-`RESCORED`
//! candidates of the 4-bit logits are rescored: their rows are gathered from the embedding table — which
//! the int8 rewrite stores once, as int8 rows with a scale each, for both Gathers — and multiplied by the
//! float state. Greedy decoding then picks what int8 weights pick unless the int8 winner falls outside the
//! 4-bit top 8. In tiny.en's decoder step the 4-bit projection took 0.64–0.70 ms against 1.18 ms in
//! 8 bits, and the rescoring ≈ 0.15 ms (TopK, two Gathers, ScatterElements). An untied projection stays in
//! 8 bits: rescoring it would need a second copy of the weight.

use crate::onnx::attr::int;
use crate::onnx::proto::{tensor_proto::DataType, GraphProto, ModelProto, NodeProto, TensorProto};

use super::fuse::CONTRIB_DOMAIN;
use super::graph::{f32_tensor, i64_tensor, label, node, weight_matmuls, WeightMatMul};
use super::qmath::{quantize_blocks_u4, quantize_blocks_u8};
use super::{float_data, QuantError};

/// Narrowest output that counts as a vocabulary (Whisper's and BLIP's are 51 864 and 30 524).
pub const MIN_COLUMNS: usize = 8192;

/// Block sizes tried for 8 bits, largest first; the first that divides the weight's rows is used.
const BLOCKS: [usize; 4] = [128, 64, 32, 16];

/// Block size of the 4-bit weights (smaller blocks, since 4 bits have 16 levels).
const BLOCK_4BIT: usize = 32;

/// Candidates of the 4-bit logits rescored from the embedding rows.
pub const RESCORED: i64 = 8;

/// What the rewrite does, as recorded in a sidecar's parameters.
pub const DESCRIPTION: &str = "a MatMul onto a graph output at least 8192 wide (the vocabulary projection): com.microsoft.MatMulNBits, activations int8 per block at run time (accuracy_level 4); tied to a token-embedding Gather: 4-bit weights symmetric per column and block of 32 rows, the top 8 logits rescored from the embedding's rows (int8 per row) times the float state; untied: 8-bit weights per column and block of 128 rows";

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
    let mut replaced: Vec<(usize, Vec<NodeProto>)> = Vec::new();
    for m in &targets {
        let w = graph
            .initializer
            .iter()
            .find(|t| t.name() == m.weight)
            .ok_or_else(|| QuantError::Tensor(format!("initializer `{}` is gone", m.weight)))?;
        let data = float_data(w)?;
        let tied = if m.k.is_multiple_of(BLOCK_4BIT) {
            tied_table(graph, &data, m)?
        } else {
            None
        };
        let old = &graph.node[m.node];
        let name = label(old);
        let nodes = match tied {
            Some(table) => rescored_4bit(m, &name, &old.output[0], &data, &table, &mut new_inits),
            None => vec![projection_8bit(
                m,
                &name,
                &old.output[0],
                &data,
                &mut new_inits,
            )],
        };
        replaced.push((m.node, nodes));
        done.push(name);
    }
    if !done.is_empty() {
        let old = std::mem::take(&mut graph.node);
        let mut replaced: std::collections::HashMap<usize, Vec<NodeProto>> =
            replaced.into_iter().collect();
        for (i, n) in old.into_iter().enumerate() {
            match replaced.remove(&i) {
                Some(nodes) => graph.node.extend(nodes),
                None => graph.node.push(n),
            }
        }
        super::graph::drop_unused_initializers(graph);
        graph.initializer.extend(new_inits);
        super::fuse::declare_contrib_domain(model);
    }
    Ok(done)
}

/// The name of an embedding table that some `Gather` of `graph` reads and that holds `m`'s weight
/// transposed, value for value: [N, K] with row n equal to column n of the [K, N] weight `w`.
fn tied_table(
    graph: &GraphProto,
    w: &[f32],
    m: &WeightMatMul,
) -> Result<Option<String>, QuantError> {
    let index = super::graph::initializer_index(graph);
    for n in &graph.node {
        let Some(t) = super::int8::embedding_table(n, &index, &graph.initializer) else {
            continue;
        };
        if t.dims != [m.n as i64, m.k as i64] {
            continue;
        }
        let table = float_data(t)?;
        let transposed =
            (0..m.n).all(|col| (0..m.k).all(|r| table[col * m.k + r] == w[r * m.n + col]));
        if transposed {
            return Ok(Some(t.name().to_string()));
        }
    }
    Ok(None)
}

fn blocks_tensor(name: &str, dims: Vec<i64>, q: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims,
        data_type: Some(DataType::Uint8 as i32),
        raw_data: Some(q),
        ..Default::default()
    }
}

fn matmul_nbits(
    name: String,
    inputs: Vec<String>,
    output: String,
    m: &WeightMatMul,
    bits: i64,
    block: usize,
) -> NodeProto {
    let mut op = node("MatMulNBits", name, inputs, vec![output]);
    op.domain = Some(CONTRIB_DOMAIN.into());
    op.attribute = vec![
        int("K", m.k as i64),
        int("N", m.n as i64),
        int("bits", bits),
        int("block_size", block as i64),
        int("accuracy_level", 4),
    ];
    op
}

/// The projection as one 8-bit MatMulNBits writing `output`.
fn projection_8bit(
    m: &WeightMatMul,
    name: &str,
    output: &str,
    w: &[f32],
    inits: &mut Vec<TensorProto>,
) -> NodeProto {
    let block = *BLOCKS
        .iter()
        .find(|b| m.k.is_multiple_of(**b))
        .expect("targets are filtered on it");
    let (q, scales) = quantize_blocks_u8(w, m.k, m.n, block);
    let blocks = (m.k / block) as i64;
    let (q_name, s_name) = (
        format!("{}_blocks_u8", m.weight),
        format!("{}_block_scales", m.weight),
    );
    inits.push(blocks_tensor(
        &q_name,
        vec![m.n as i64, blocks, block as i64],
        q,
    ));
    inits.push(f32_tensor(&s_name, vec![m.n as i64 * blocks], &scales));
    matmul_nbits(
        name.to_string(),
        vec![m.activation.clone(), q_name, s_name],
        output.to_string(),
        m,
        8,
        block,
    )
}

/// The projection in 4 bits, then its top `RESCORED` logits replaced by `x · row` for their rows of the
/// tied `table`: `ScatterElements(approx, top, ReduceSum(Gather(table, top) · Unsqueeze(x, −2), −1))`.
fn rescored_4bit(
    m: &WeightMatMul,
    name: &str,
    output: &str,
    w: &[f32],
    table: &str,
    inits: &mut Vec<TensorProto>,
) -> Vec<NodeProto> {
    let (q, scales) = quantize_blocks_u4(w, m.k, m.n, BLOCK_4BIT);
    let blocks = (m.k / BLOCK_4BIT) as i64;
    let v = |s: &str| format!("{name}/rescore/{s}");
    let (q_name, s_name) = (
        format!("{}_blocks_u4", m.weight),
        format!("{}_block4_scales", m.weight),
    );
    inits.push(blocks_tensor(
        &q_name,
        vec![m.n as i64, blocks, (BLOCK_4BIT / 2) as i64],
        q,
    ));
    inits.push(f32_tensor(&s_name, vec![m.n as i64 * blocks], &scales));
    inits.push(i64_tensor(&v("k"), &[RESCORED]));
    inits.push(i64_tensor(&v("last"), &[-1]));
    inits.push(i64_tensor(&v("second_last"), &[-2]));
    let mut top = node(
        "TopK",
        v("TopK"),
        vec![v("approx"), v("k")],
        vec![v("top_values"), v("top")],
    );
    top.attribute = vec![int("axis", -1)];
    let mut reduce = node(
        "ReduceSum",
        v("ReduceSum"),
        vec![v("products"), v("last")],
        vec![v("exact")],
    );
    reduce.attribute = vec![int("keepdims", 0)];
    let mut scatter = node(
        "ScatterElements",
        v("ScatterElements"),
        vec![v("approx"), v("top"), v("exact")],
        vec![output.to_string()],
    );
    scatter.attribute = vec![int("axis", -1)];
    vec![
        matmul_nbits(
            name.to_string(),
            vec![m.activation.clone(), q_name, s_name],
            v("approx"),
            m,
            4,
            BLOCK_4BIT,
        ),
        top,
        node(
            "Gather",
            v("Gather"),
            vec![table.to_string(), v("top")],
            vec![v("rows")],
        ),
        node(
            "Unsqueeze",
            v("Unsqueeze"),
            vec![m.activation.clone(), v("second_last")],
            vec![v("state")],
        ),
        node(
            "Mul",
            v("Mul"),
            vec![v("rows"), v("state")],
            vec![v("products")],
        ),
        reduce,
        scatter,
    ]
}
