//! Transformer building blocks expressed in plain ONNX ops (the way PyTorch's exporter writes them), shared
//! by the model exporters.

use crate::onnx::attr::{float, int, ints};
use crate::onnx::GraphBuilder;

const LN_EPSILON: f32 = 1e-5;

/// x · W (+ b); the MatMul is named after its weight (`model.encoder.layers.0.fc1/MatMul`) so ignored
/// scopes can address it.
pub fn linear(g: &mut GraphBuilder, x: &str, w: &str, b: Option<&str>) -> String {
    let name = format!("{}/MatMul", w.trim_end_matches(".weight"));
    let y = g.op_named(&name, "MatMul", &[x, w], vec![]);
    match b {
        Some(b) => g.op("Add", &[&y, b], vec![]),
        None => y,
    }
}

pub fn layer_norm(g: &mut GraphBuilder, x: &str, gamma: &str, beta: &str) -> String {
    layer_norm_eps(g, x, gamma, beta, LN_EPSILON)
}

/// LayerNorm with the model's own epsilon (BERT's is 1e-12).
pub fn layer_norm_eps(g: &mut GraphBuilder, x: &str, gamma: &str, beta: &str, eps: f32) -> String {
    g.op("LayerNormalization", &[x, gamma, beta], ln_attrs(eps))
}

pub fn layer_norm_into(g: &mut GraphBuilder, x: &str, gamma: &str, beta: &str, out: &str) {
    g.op_into(
        "LayerNormalization",
        &[x, gamma, beta],
        ln_attrs(LN_EPSILON),
        &[out],
    );
}

fn ln_attrs(eps: f32) -> Vec<crate::onnx::proto::AttributeProto> {
    vec![int("axis", -1), float("epsilon", eps)]
}

/// Exact GELU: 0.5 · x · (1 + erf(x / √2)).
pub fn gelu(g: &mut GraphBuilder, x: &str) -> String {
    let inv_sqrt2 = g.f32_scalar(std::f32::consts::FRAC_1_SQRT_2);
    let one = g.f32_scalar(1.0);
    let half = g.f32_scalar(0.5);
    let s = g.op("Mul", &[x, &inv_sqrt2], vec![]);
    let e = g.op("Erf", &[&s], vec![]);
    let e1 = g.op("Add", &[&e, &one], vec![]);
    let xe = g.op("Mul", &[x, &e1], vec![]);
    g.op("Mul", &[&xe, &half], vec![])
}

pub struct Heads {
    pub n: usize,
    pub dim: usize,
    d_model: usize,
}

impl Heads {
    pub fn new(n: usize, d_model: usize) -> Self {
        Heads {
            n,
            dim: d_model / n,
            d_model,
        }
    }

    /// [B, T, D] → [B, H, T, hd]
    pub fn split(&self, g: &mut GraphBuilder, x: &str) -> String {
        let shape = g.i64_const(&[0, 0, self.n as i64, self.dim as i64]);
        let r = g.op("Reshape", &[x, &shape], vec![]);
        g.op("Transpose", &[&r], vec![ints("perm", &[0, 2, 1, 3])])
    }

    /// [B, H, T, hd] → [B, T, D]
    fn merge(&self, g: &mut GraphBuilder, x: &str) -> String {
        let t = g.op("Transpose", &[x], vec![ints("perm", &[0, 2, 1, 3])]);
        let shape = g.i64_const(&[0, 0, self.d_model as i64]);
        g.op("Reshape", &[&t, &shape], vec![])
    }
}

/// Scaled dot-product attention of q [B,T,D] over per-head k, v [B,H,S,hd]; optional additive mask [T,S].
pub fn attention(
    g: &mut GraphBuilder,
    heads: &Heads,
    q: &str,
    k: &str,
    v: &str,
    mask: Option<&str>,
) -> String {
    let scale = g.f32_scalar(1.0 / (heads.dim as f32).sqrt());
    let qs = g.op("Mul", &[q, &scale], vec![]);
    let qh = heads.split(g, &qs);
    let kt = g.op("Transpose", &[k], vec![ints("perm", &[0, 1, 3, 2])]);
    let mut s = g.op("MatMul", &[&qh, &kt], vec![]);
    if let Some(m) = mask {
        s = g.op("Add", &[&s, m], vec![]);
    }
    let p = g.op("Softmax", &[&s], vec![int("axis", -1)]);
    let o = g.op("MatMul", &[&p, v], vec![]);
    heads.merge(g, &o)
}
