//! Fusion through ONNX Runtime: a fused graph computes what the unfused one does (small graphs, real
//! tiny.en token for token, the trained BLIP answer for answer), only the forms the fused kernel runs
//! fast are replaced, and fusing is deterministic.

mod common;

use std::path::Path;

use ort::value::Tensor;
use quantbench::config::Variant;
use quantbench::engine::{open_blip_variant, open_variant, QuantSetup};
use quantbench::onnx::layers::{attention, Heads};
use quantbench::onnx::proto::tensor_proto::DataType;
use quantbench::onnx::proto::ModelProto;
use quantbench::onnx::{write_model, Dim, GraphBuilder};
use quantbench::quant::fuse::fuse;

const SEQ: usize = 37;

fn weights(seed: u32, n: usize, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * scale
        })
        .collect()
}

/// One self-attention block as the exporters write it: q/k/v projections of x [B, T, d], per-head split,
/// scaled dot-product attention (with an additive [T, T] mask when `masked`), merge, output projection.
fn attention_graph(d: usize, heads: usize, masked: bool) -> ModelProto {
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[Dim::Named("batch"), Dim::Named("seq"), Dim::Fixed(d as i64)],
    );
    let h = Heads::new(heads, d);
    let proj = |g: &mut GraphBuilder, name: &str, seed: u32| {
        let w = g.f32_init(name, &[d, d], &weights(seed, d * d, 0.6));
        g.op("MatMul", &[&x, &w], vec![])
    };
    let q = proj(&mut g, "wq", 1);
    let k = proj(&mut g, "wk", 2);
    let v = proj(&mut g, "wv", 3);
    let (kh, vh) = (h.split(&mut g, &k), h.split(&mut g, &v));
    let mask = masked.then(|| {
        let mut m = vec![0f32; SEQ * SEQ];
        for r in 0..SEQ {
            for c in r + 1..SEQ {
                m[r * SEQ + c] = f32::NEG_INFINITY;
            }
        }
        g.f32_init("mask", &[SEQ, SEQ], &m)
    });
    let o = attention(&mut g, &h, &q, &kh, &vh, mask.as_deref());
    let wo = g.f32_init("wo", &[d, d], &weights(4, d * d, 0.6));
    g.op_into("MatMul", &[&o, &wo], vec![], &["y"]);
    g.output(
        "y",
        DataType::Float,
        &[Dim::Named("batch"), Dim::Named("seq"), Dim::Fixed(d as i64)],
    );
    g.finish("attention", 17)
}

fn run(path: &Path, x: &[f32], batch: usize, d: usize) -> Vec<f32> {
    let mut s = quantbench::runtime::session(path, 1).unwrap();
    let input = Tensor::from_array((vec![batch as i64, SEQ as i64, d as i64], x.to_vec())).unwrap();
    let out = s.run(ort::inputs! {"x" => input}).unwrap();
    out["y"].try_extract_tensor::<f32>().unwrap().1.to_vec()
}

fn count(m: &ModelProto, op: &str) -> usize {
    m.graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .filter(|n| n.op_type() == op)
        .count()
}

#[test]
fn fused_attention_matches_the_unfused_graph_in_ort() {
    common::context().init_runtime(&mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (d, heads, batch) in [(64, 4, 2), (48, 6, 1), (32, 1, 3)] {
        let plain = attention_graph(d, heads, false);
        let mut fused = plain.clone();
        let fusions = fuse(&mut fused).unwrap();
        assert_eq!(fusions.get("MultiHeadAttention"), Some(&1), "{fusions:?}");
        assert_eq!(count(&fused, "MultiHeadAttention"), 1);
        // The whole chain goes: no Softmax, no per-head Transpose is left.
        assert_eq!(count(&fused, "Softmax") + count(&fused, "Transpose"), 0);

        let (p, f) = (dir.path().join("plain.onnx"), dir.path().join("fused.onnx"));
        write_model(&plain, &p).unwrap();
        write_model(&fused, &f).unwrap();
        let x = weights(9, batch * SEQ * d, 4.0);
        let (a, b) = (run(&p, &x, batch, d), run(&f, &x, batch, d));
        let diff = max_diff(&a, &b);
        assert!(diff <= 1e-4, "d {d} heads {heads}: max |diff| {diff}");
        // Same argmax over the features of every position.
        let argmax = |v: &[f32]| -> Vec<usize> {
            v.chunks(d)
                .map(|row| (0..d).max_by(|&i, &j| row[i].total_cmp(&row[j])).unwrap())
                .collect()
        };
        assert_eq!(argmax(&a), argmax(&b));
    }
}

/// How a test graph writes exact GELU.
#[derive(Clone, Copy, Debug)]
enum GeluForm {
    /// x · (1/√2), …, (x · (1 + erf)) · 0.5 — this project's exporter.
    MulHalfLast,
    /// x / √2, …, (x · (1 + erf)) · 0.5 — PyTorch's exporter.
    DivHalfLast,
    /// x / √2, …, (0.5 · x) · (1 + erf).
    DivHalfFirst,
}

fn gelu_as(g: &mut GraphBuilder, x: &str, form: GeluForm) -> String {
    let one = g.f32_scalar(1.0);
    let half = g.f32_scalar(0.5);
    let s = match form {
        GeluForm::MulHalfLast => {
            let c = g.f32_scalar(std::f32::consts::FRAC_1_SQRT_2);
            g.op("Mul", &[x, &c], vec![])
        }
        GeluForm::DivHalfLast | GeluForm::DivHalfFirst => {
            let c = g.f32_scalar(std::f32::consts::SQRT_2);
            g.op("Div", &[x, &c], vec![])
        }
    };
    let e = g.op("Erf", &[&s], vec![]);
    let e1 = g.op("Add", &[&one, &e], vec![]);
    match form {
        GeluForm::DivHalfFirst => {
            let hx = g.op("Mul", &[&half, x], vec![]);
            g.op("Mul", &[&hx, &e1], vec![])
        }
        _ => {
            let xe = g.op("Mul", &[x, &e1], vec![]);
            g.op("Mul", &[&xe, &half], vec![])
        }
    }
}

/// A pre-norm feed-forward block and the next norm, as Whisper's and ViT's layers are written:
/// r = x + fc2(gelu(fc1(LN(x)))), y = r + LN(r) · W.
fn feed_forward_graph(d: usize, form: GeluForm) -> ModelProto {
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[Dim::Named("batch"), Dim::Named("seq"), Dim::Fixed(d as i64)],
    );
    let norm = |g: &mut GraphBuilder, x: &str, seed: u32| {
        let gamma = g.f32_init(&format!("gamma{seed}"), &[d], &weights(seed, d, 1.0));
        let beta = g.f32_init(&format!("beta{seed}"), &[d], &weights(seed + 1, d, 0.2));
        quantbench::onnx::layers::layer_norm(g, x, &gamma, &beta)
    };
    let h = norm(&mut g, &x, 10);
    let w1 = g.f32_init("w1", &[d, 4 * d], &weights(5, 4 * d * d, 0.5));
    let b1 = g.f32_init("b1", &[4 * d], &weights(6, 4 * d, 0.5));
    let a = g.op("MatMul", &[&h, &w1], vec![]);
    let a = g.op("Add", &[&a, &b1], vec![]);
    let a = gelu_as(&mut g, &a, form);
    let w2 = g.f32_init("w2", &[4 * d, d], &weights(7, 4 * d * d, 0.3));
    let f = g.op("MatMul", &[&a, &w2], vec![]);
    let r = g.op("Add", &[&x, &f], vec![]);
    let n = norm(&mut g, &r, 20);
    let w3 = g.f32_init("w3", &[d, d], &weights(8, d * d, 0.5));
    let o = g.op("MatMul", &[&n, &w3], vec![]);
    g.op_into("Add", &[&r, &o], vec![], &["y"]);
    g.output(
        "y",
        DataType::Float,
        &[Dim::Named("batch"), Dim::Named("seq"), Dim::Fixed(d as i64)],
    );
    g.finish("feed_forward", 17)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (u, v)| m.max((u - v).abs()))
}

#[test]
fn fused_gelu_matches_the_unfused_graph_in_ort() {
    common::context().init_runtime(&mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = 48;
    for form in [
        GeluForm::MulHalfLast,
        GeluForm::DivHalfLast,
        GeluForm::DivHalfFirst,
    ] {
        let plain = feed_forward_graph(d, form);
        let mut fused = plain.clone();
        let fusions = fuse(&mut fused).unwrap();
        assert_eq!(fusions.len(), 1, "{form:?}: {fusions:?}");
        assert_eq!(fusions.get("Gelu"), Some(&1), "{form:?}: {fusions:?}");
        assert_eq!(count(&fused, "Erf") + count(&fused, "Div"), 0, "{form:?}");
        // Bias, residual and the last Add stay; so does every Mul but GELU's three.
        assert_eq!(count(&fused, "Add"), 3, "{form:?}");
        assert_eq!(count(&fused, "Mul"), 0, "{form:?}");

        let (p, f) = (dir.path().join("plain.onnx"), dir.path().join("fused.onnx"));
        write_model(&plain, &p).unwrap();
        write_model(&fused, &f).unwrap();
        let x = weights(11, 2 * SEQ * d, 4.0);
        let (a, b) = (run(&p, &x, 2, d), run(&f, &x, 2, d));
        let diff = max_diff(&a, &b);
        assert!(diff <= 1e-4, "{form:?}: max |diff| {diff}");
    }
}

#[test]
fn gelu_lookalikes_are_left_alone() {
    // An erf chain scaled by 0.5 instead of 1/√2 is another function.
    let mut g = GraphBuilder::new();
    let x = g.input("x", DataType::Float, &[Dim::Named("n"), Dim::Fixed(8)]);
    let c = g.f32_scalar(0.5);
    let one = g.f32_scalar(1.0);
    let s = g.op("Mul", &[&x, &c], vec![]);
    let e = g.op("Erf", &[&s], vec![]);
    let e1 = g.op("Add", &[&e, &one], vec![]);
    let xe = g.op("Mul", &[&x, &e1], vec![]);
    let y = g.op("Mul", &[&xe, &c], vec![]);
    let table = g.f32_init("table", &[8], &weights(1, 8, 1.0));
    let p = g.op("Add", &[&y, &table], vec![]);
    let gamma = g.f32_init("gamma", &[8], &weights(2, 8, 1.0));
    let beta = g.f32_init("beta", &[8], &weights(3, 8, 1.0));
    let n = quantbench::onnx::layers::layer_norm(&mut g, &p, &gamma, &beta);
    g.op_into("Identity", &[&n], vec![], &["out"]);
    g.output("out", DataType::Float, &[Dim::Named("n"), Dim::Fixed(8)]);
    let plain = g.finish("lookalike", 17);
    let mut fused = plain.clone();
    assert!(fuse(&mut fused).unwrap().is_empty());
    assert_eq!(fused, plain);
}

#[test]
fn masked_attention_is_left_to_the_plain_kernels() {
    let plain = attention_graph(32, 4, true);
    let mut fused = plain.clone();
    assert!(fuse(&mut fused).unwrap().is_empty());
    assert_eq!(fused, plain);
}

#[test]
fn fusing_is_deterministic_and_idempotent() {
    use prost::Message;
    let mut a = attention_graph(64, 4, false);
    let mut b = attention_graph(64, 4, false);
    fuse(&mut a).unwrap();
    fuse(&mut b).unwrap();
    assert_eq!(a.encode_to_vec(), b.encode_to_vec());
    let again = a.clone();
    assert!(fuse(&mut a).unwrap().is_empty());
    assert_eq!(a, again);
}

#[test]
fn fused_tiny_en_gives_the_ctranslate2_tokens() {
    let ctx = common::context();
    let mut opened = open_variant(
        "whisper-tiny.en",
        Variant::Recipe(quantbench::quant::Recipe::Fused),
        &QuantSetup::default(),
        &ctx,
        &mut |_| {},
    )
    .unwrap();
    let reference = common::reference_tokens("whisper-tiny.en");
    assert_eq!(reference.len(), 12);
    for (audio, ids, text) in &reference {
        let t = common::transcribe_clip(&mut opened.pipeline, audio);
        assert_eq!(&t.tokens, ids, "{audio}: {} (want {text})", t.text);
    }
}

#[test]
fn fused_blip_gives_the_fp32_answers() {
    let ctx = common::context();
    let open = |variant| {
        open_blip_variant(
            "blip-easyvqa",
            variant,
            &QuantSetup::default(),
            &ctx,
            &mut |_| {},
        )
        .unwrap()
        .pipeline
    };
    let mut fp32 = open(Variant::Fp32);
    let mut fused = open(Variant::Recipe(quantbench::quant::Recipe::Fused));
    let test = quantbench::data::easy_vqa::prepare(
        &ctx.cache,
        quantbench::data::easy_vqa::Split::Test,
        &mut |_| {},
    )
    .unwrap();
    let items = quantbench::data::manifest::load_vqa(&test.vqa).unwrap();
    for q in items.iter().take(40) {
        let image = quantbench::data::image::load_rgb(&q.image).unwrap();
        let a = fp32.answer(&image, &q.question).unwrap();
        let b = fused.answer(&image, &q.question).unwrap();
        assert_eq!(a.text, b.text, "{}: {}", q.image.display(), q.question);
    }
    let captions = quantbench::data::manifest::load_captions(&test.captions).unwrap();
    for c in captions.iter().take(10) {
        let image = quantbench::data::image::load_rgb(&c.image).unwrap();
        assert_eq!(
            fp32.caption(&image).unwrap().text,
            fused.caption(&image).unwrap().text
        );
    }
}

/// Whisper's stem on a small scale: conv (k 3, pad 1) → GELU → conv (k 3, pad 1, stride 2) → GELU →
/// Transpose to [B, T, C]; `odd` adds a third convolution with dilation 2, uneven pads and no bias.
fn conv_stem_graph(channels: usize, odd: bool) -> ModelProto {
    use quantbench::onnx::attr::ints;
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[Dim::Named("batch"), Dim::Fixed(6), Dim::Named("time")],
    );
    let mut h = x;
    let mut cin = 6;
    let mut layers = vec![(1i64, 1i64, [1i64, 1i64], true), (2, 1, [1, 1], true)];
    if odd {
        layers.push((1, 2, [3, 0], false));
    }
    for (i, (stride, dilation, pads, bias)) in layers.into_iter().enumerate() {
        let w = g.f32_init(
            &format!("conv{i}.weight"),
            &[channels, cin, 3],
            &weights(30 + i as u32, channels * cin * 3, 0.8),
        );
        let mut inputs = vec![h.clone(), w];
        if bias {
            inputs.push(g.f32_init(
                &format!("conv{i}.bias"),
                &[channels],
                &weights(40 + i as u32, channels, 0.5),
            ));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let c = g.op(
            "Conv",
            &refs,
            vec![
                ints("pads", &pads),
                ints("strides", &[stride]),
                ints("dilations", &[dilation]),
                ints("kernel_shape", &[3]),
            ],
        );
        h = gelu_as(&mut g, &c, GeluForm::DivHalfLast);
        cin = channels;
    }
    g.op_into("Transpose", &[&h], vec![ints("perm", &[0, 2, 1])], &["y"]);
    g.output(
        "y",
        DataType::Float,
        &[
            Dim::Named("batch"),
            Dim::Named("t"),
            Dim::Fixed(channels as i64),
        ],
    );
    g.finish("stem", 17)
}

fn run_named(path: &Path, shape: Vec<i64>, x: &[f32]) -> (Vec<i64>, Vec<f32>) {
    let mut s = quantbench::runtime::session(path, 1).unwrap();
    let input = Tensor::from_array((shape, x.to_vec())).unwrap();
    let out = s.run(ort::inputs! {"x" => input}).unwrap();
    let (shape, data) = out["y"].try_extract_tensor::<f32>().unwrap();
    (shape.to_vec(), data.to_vec())
}

#[test]
fn lowered_convolutions_match_ort_conv() {
    use quantbench::quant::lower::lower_convs;
    common::context().init_runtime(&mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for odd in [false, true] {
        let plain = conv_stem_graph(16, odd);
        let mut fused = plain.clone();
        fuse(&mut fused).unwrap();
        let mut lowered = fused.clone();
        // The first convolution reads the graph's input, so it stays float.
        let convs = if odd { 2 } else { 1 };
        assert_eq!(lower_convs(&mut lowered, &|_| false).unwrap(), convs);
        assert_eq!(count(&lowered, "Conv"), 1);
        assert_eq!(count(&lowered, "MatMul"), convs);
        // The Transpose pairs around each GELU between lowered convolutions and before the graph's own
        // Transpose cancel: the one into the first lowered convolution is left.
        assert_eq!(count(&lowered, "Transpose"), 1, "odd {odd}");
        let (f, l) = (
            dir.path().join("fused.onnx"),
            dir.path().join("lowered.onnx"),
        );
        write_model(&fused, &f).unwrap();
        write_model(&lowered, &l).unwrap();
        // Odd and even lengths, so each tap's end is checked against Conv's output length.
        for time in [37i64, 40, 3000] {
            let x = weights(50 + time as u32, 2 * 6 * time as usize, 3.0);
            let (sa, a) = run_named(&f, vec![2, 6, time], &x);
            let (sb, b) = run_named(&l, vec![2, 6, time], &x);
            assert_eq!(sa, sb, "odd {odd}, time {time}");
            let diff = max_diff(&a, &b);
            assert!(diff <= 1e-4, "odd {odd}, time {time}: max |diff| {diff}");
        }
    }
}

#[test]
fn convolutions_in_the_ignored_scope_stay() {
    use quantbench::quant::lower::lower_convs;
    let plain = conv_stem_graph(8, false);
    let mut lowered = plain.clone();
    assert_eq!(
        lower_convs(&mut lowered, &|n| n.op_type() == "MatMul").unwrap(),
        0
    );
    assert_eq!(lowered, plain);
}

/// Cross-attention in a decoding step as BLIP's decoder writes it: queries from the new tokens x [B, M, d],
/// keys and values projected from the encoder's states [B, T, d] (with biases when `biased`), an additive
/// mask over the states, output projection. `keys_out` also returns the per-head keys (Whisper's first
/// decoder step returns them as `present.N.encoder.key`). `weight` maps a projection's weight, by name,
/// before it is stored (the weight-only reference dequantizes the keys' and values').
fn cross_attention_graph(
    d: usize,
    heads: usize,
    biased: bool,
    keys_out: bool,
    weight: &dyn Fn(&str, Vec<f32>) -> Vec<f32>,
) -> ModelProto {
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[Dim::Named("batch"), Dim::Named("new"), Dim::Fixed(d as i64)],
    );
    let states = g.input(
        "states",
        DataType::Float,
        &[
            Dim::Named("batch"),
            Dim::Named("frames"),
            Dim::Fixed(d as i64),
        ],
    );
    let mask = g.input(
        "mask",
        DataType::Float,
        &[
            Dim::Named("batch"),
            Dim::Fixed(1),
            Dim::Fixed(1),
            Dim::Named("frames"),
        ],
    );
    let h = Heads::new(heads, d);
    let past = g.input(
        "past_key_values.0.key",
        DataType::Float,
        &[
            Dim::Named("batch"),
            Dim::Fixed(heads as i64),
            Dim::Named("past"),
            Dim::Fixed(h.dim as i64),
        ],
    );
    let proj = |g: &mut GraphBuilder, from: &str, name: &str, seed: u32| {
        let w = g.f32_init(name, &[d, d], &weight(name, weights(seed, d * d, 0.6)));
        let p = g.op("MatMul", &[from, &w], vec![]);
        if biased {
            let b = g.f32_init(&format!("{name}.bias"), &[d], &weights(seed + 10, d, 0.8));
            g.op("Add", &[&p, &b], vec![])
        } else {
            p
        }
    };
    let q = proj(&mut g, &x, "wq", 1);
    let k = proj(&mut g, &states, "wk", 2);
    let v = proj(&mut g, &states, "wv", 3);
    let (kh, vh) = (h.split(&mut g, &k), h.split(&mut g, &v));
    let o = attention(&mut g, &h, &q, &kh, &vh, Some(&mask));
    let wo = g.f32_init("wo", &[d, d], &weights(4, d * d, 0.6));
    g.op_into("MatMul", &[&o, &wo], vec![], &["y"]);
    g.output(
        "y",
        DataType::Float,
        &[Dim::Named("batch"), Dim::Named("new"), Dim::Fixed(d as i64)],
    );
    let per_head = |length: &'static str| {
        vec![
            Dim::Named("batch"),
            Dim::Fixed(heads as i64),
            Dim::Named(length),
            Dim::Fixed(h.dim as i64),
        ]
    };
    g.op_into("Identity", &[&past], vec![], &["present.0.key"]);
    g.output("present.0.key", DataType::Float, &per_head("past"));
    if keys_out {
        g.op_into("Identity", &[&kh], vec![], &["keys"]);
        g.output("keys", DataType::Float, &per_head("frames"));
    }
    g.finish("cross_attention", 17)
}

/// Runs a cross-attention graph: B = 2, `new` queries over 29 frames (the second batch row's last 7
/// masked off), a 3-step past.
fn run_cross(path: &Path, d: usize, heads: usize, new: usize) -> Vec<f32> {
    const FRAMES: usize = 29;
    let mut s = quantbench::runtime::session(path, 1).unwrap();
    let t = |shape: Vec<i64>, data: Vec<f32>| Tensor::from_array((shape, data)).unwrap();
    let mut mask = vec![0f32; 2 * FRAMES];
    mask[2 * FRAMES - 7..].fill(-10_000.0);
    let out = s
        .run(ort::inputs! {
            "x" => t(vec![2, new as i64, d as i64], weights(21, 2 * new * d, 4.0)),
            "states" => t(vec![2, FRAMES as i64, d as i64], weights(22, 2 * FRAMES * d, 4.0)),
            "mask" => t(vec![2, 1, 1, FRAMES as i64], mask),
            "past_key_values.0.key" => t(vec![2, heads as i64, 3, (d / heads) as i64], vec![0.5; 2 * 3 * d]),
        })
        .unwrap();
    out["y"].try_extract_tensor::<f32>().unwrap().1.to_vec()
}

fn argmax_rows(v: &[f32], d: usize) -> Vec<usize> {
    v.chunks(d)
        .map(|row| (0..d).max_by(|&i, &j| row[i].total_cmp(&row[j])).unwrap())
        .collect()
}

#[test]
fn absorbed_cross_attention_matches_the_projected_graph_in_ort() {
    use quantbench::quant::absorb::{absorb, is_decoding_step, Weights};
    use quantbench::quant::qmath::quantize_per_column_i8;
    common::context().init_runtime(&mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let float = |_: &str, w: Vec<f32>| w;
    // The weight-only reference: each weight replaced by its per-column int8 dequantized, then projected
    // as before; the absorbed int8 graph must compute the same.
    let dequantized = |name: &str, w: Vec<f32>| {
        if !["wk", "wv"].contains(&name) {
            return w;
        }
        let n = (w.len() as f64).sqrt() as usize;
        let (q, s) = quantize_per_column_i8(&w, n, n);
        q.iter()
            .enumerate()
            .map(|(i, &v)| v as f32 * s[i % n])
            .collect()
    };
    for (d, heads, biased, new) in [(64, 4, true, 1), (48, 6, false, 5), (32, 1, true, 2)] {
        for weights_kind in [Weights::Float, Weights::Int8] {
            let original = cross_attention_graph(d, heads, biased, false, &float);
            let reference = match weights_kind {
                Weights::Float => original.clone(),
                Weights::Int8 => cross_attention_graph(d, heads, biased, false, &dequantized),
            };
            assert!(is_decoding_step(&original));
            let mut absorbed = original.clone();
            assert_eq!(absorb(&mut absorbed, weights_kind, &|_| false).unwrap(), 2);
            // Neither the key nor the value projection of the states is left.
            let states_read = absorbed
                .graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .filter(|n| n.op_type() == "MatMul" && n.input.iter().any(|i| i == "states"));
            assert_eq!(states_read.count(), 0);
            if weights_kind == Weights::Int8 {
                assert_eq!(count(&absorbed, "DequantizeLinear"), 2);
            }

            let (p, a) = (
                dir.path().join("plain.onnx"),
                dir.path().join("absorbed.onnx"),
            );
            write_model(&reference, &p).unwrap();
            write_model(&absorbed, &a).unwrap();
            let (want, got) = (run_cross(&p, d, heads, new), run_cross(&a, d, heads, new));
            let diff = max_diff(&want, &got);
            let case = format!("d {d} heads {heads} biased {biased} {weights_kind:?}");
            assert!(diff <= 1e-4, "{case}: max |diff| {diff}");
            assert_eq!(argmax_rows(&want, d), argmax_rows(&got, d), "{case}");
        }
    }
}

#[test]
fn cross_attention_whose_keys_are_returned_or_outside_a_decoding_step_is_left_alone() {
    use quantbench::quant::absorb::{absorb, is_decoding_step, Weights};
    let float = |_: &str, w: Vec<f32>| w;
    // The per-head keys are also an output: the projection must stay.
    let plain = cross_attention_graph(32, 4, true, true, &float);
    let mut absorbed = plain.clone();
    assert_eq!(
        absorb(&mut absorbed, Weights::Float, &|_| false).unwrap(),
        1
    );
    let matmuls_of_states = |m: &ModelProto| {
        m.graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .filter(|n| n.input.iter().any(|i| i == "states"))
            .count()
    };
    // The values are absorbed (their weighted states read the states through one Reshape); the keys'
    // projection still reads them.
    assert!(matmuls_of_states(&absorbed) >= 1);
    // An encoder (no cache inputs) is not a decoding step.
    let encoder = attention_graph(32, 4, false);
    assert!(!is_decoding_step(&encoder));
}

#[test]
fn absorbing_is_deterministic_and_idempotent() {
    use prost::Message;
    use quantbench::quant::absorb::{absorb, Weights};
    let float = |_: &str, w: Vec<f32>| w;
    for kind in [Weights::Float, Weights::Int8] {
        let mut a = cross_attention_graph(64, 4, true, false, &float);
        let mut b = a.clone();
        absorb(&mut a, kind, &|_| false).unwrap();
        absorb(&mut b, kind, &|_| false).unwrap();
        assert_eq!(a.encode_to_vec(), b.encode_to_vec());
        let again = a.clone();
        assert_eq!(absorb(&mut a, kind, &|_| false).unwrap(), 0);
        assert_eq!(a, again);
    }
}
