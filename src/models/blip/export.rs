//! Writes BLIP graphs from named weights (Hugging Face parameter names and PyTorch layouts, so trained
//! weights and seeded random ones go through the same path): the vision model (BLIP's ViT), the text encoder
//! (BERT with cross-attention to the image) and the text decoder step with its key/value cache.

use std::collections::BTreeMap;

use crate::onnx::attr::{int, ints};
use crate::onnx::layers::{attention, gelu, layer_norm, layer_norm_eps, linear, Heads};
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::ModelProto;
use crate::onnx::{Dim, GraphBuilder};

/// One parameter: dims and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

pub type Weights = BTreeMap<String, Param>;

/// The vision model's sizes (BlipVisionConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisionDims {
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
}

impl VisionDims {
    /// blip-vqa-base: ViT-B/16 at 384 pixels.
    pub const BASE: VisionDims = VisionDims {
        image_size: 384,
        patch_size: 16,
        hidden: 768,
        layers: 12,
        heads: 12,
        intermediate: 3072,
    };

    pub fn tokens(&self) -> usize {
        (self.image_size / self.patch_size).pow(2) + 1
    }

    /// Every parameter with its shape, in the order BlipVisionModel declares them.
    pub fn parameters(&self) -> Vec<(String, Vec<usize>)> {
        let (d, p, m) = (self.hidden, self.patch_size, self.intermediate);
        let mut v = vec![
            ("embeddings.class_embedding".to_string(), vec![1, 1, d]),
            ("embeddings.patch_embedding.weight".into(), vec![d, 3, p, p]),
            ("embeddings.patch_embedding.bias".into(), vec![d]),
            (
                "embeddings.position_embedding".into(),
                vec![1, self.tokens(), d],
            ),
        ];
        for i in 0..self.layers {
            let l = format!("encoder.layers.{i}");
            for (name, dims) in [
                ("layer_norm1.weight", vec![d]),
                ("layer_norm1.bias", vec![d]),
                ("self_attn.qkv.weight", vec![3 * d, d]),
                ("self_attn.qkv.bias", vec![3 * d]),
                ("self_attn.projection.weight", vec![d, d]),
                ("self_attn.projection.bias", vec![d]),
                ("layer_norm2.weight", vec![d]),
                ("layer_norm2.bias", vec![d]),
                ("mlp.fc1.weight", vec![m, d]),
                ("mlp.fc1.bias", vec![m]),
                ("mlp.fc2.weight", vec![d, m]),
                ("mlp.fc2.bias", vec![d]),
            ] {
                v.push((format!("{l}.{name}"), dims));
            }
        }
        v.push(("post_layernorm.weight".into(), vec![d]));
        v.push(("post_layernorm.bias".into(), vec![d]));
        v
    }
}

/// Seeded weights as BERT initialises them: normal(0, 0.02), LayerNorm scale 1 and shift 0, biases 0.
pub fn random_weights(parameters: &[(String, Vec<usize>)], seed: u64) -> Weights {
    let mut rng = crate::rng::XorShift64::new(seed);
    let mut uniform = move || rng.uniform();
    let mut normal = move || {
        let (u, v) = (uniform(), uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    };
    parameters
        .iter()
        .map(|(name, dims)| {
            let n: usize = dims.iter().product();
            let norm = name.contains("norm");
            let data = if norm && name.ends_with(".weight") {
                vec![1.0; n]
            } else if name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                (0..n).map(|_| 0.02 * normal()).collect()
            };
            (
                name.clone(),
                Param {
                    dims: dims.clone(),
                    data,
                },
            )
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("weight `{name}`: {what}")]
pub struct ExportError {
    pub name: String,
    pub what: String,
}

/// Adds the named weights to a graph, checking each against its expected shape.
struct Init<'a> {
    weights: &'a Weights,
    prefix: &'a str,
}

impl Init<'_> {
    fn get(&self, name: &str, dims: &[usize]) -> Result<&Param, ExportError> {
        let full = format!("{}{name}", self.prefix);
        let p = self.weights.get(&full).ok_or_else(|| ExportError {
            name: full.clone(),
            what: "missing".into(),
        })?;
        if p.dims != dims || p.data.len() != dims.iter().product::<usize>() {
            return Err(ExportError {
                name: full,
                what: format!("shape {:?}, expected {dims:?}", p.dims),
            });
        }
        Ok(p)
    }

    /// As stored.
    fn add(&self, g: &mut GraphBuilder, name: &str, dims: &[usize]) -> Result<String, ExportError> {
        let p = self.get(name, dims)?;
        Ok(g.f32_init(&format!("{}{name}", self.prefix), dims, &p.data))
    }

    /// A PyTorch Linear weight [out, in] (rows `from..to` of it) as the [in, out] matrix MatMul wants.
    fn linear_rows(
        &self,
        g: &mut GraphBuilder,
        name: &str,
        dims: [usize; 2],
        rows: std::ops::Range<usize>,
        as_name: &str,
    ) -> Result<String, ExportError> {
        let p = self.get(name, &dims)?;
        let (inp, out) = (dims[1], rows.len());
        let mut t = vec![0f32; inp * out];
        for (r, row) in rows.clone().enumerate() {
            for c in 0..inp {
                t[c * out + r] = p.data[row * inp + c];
            }
        }
        Ok(g.f32_init(&format!("{}{as_name}", self.prefix), &[inp, out], &t))
    }

    fn slice(
        &self,
        g: &mut GraphBuilder,
        name: &str,
        len: usize,
        range: std::ops::Range<usize>,
        as_name: &str,
    ) -> Result<String, ExportError> {
        let p = self.get(name, &[len])?;
        Ok(g.f32_init(
            &format!("{}{as_name}", self.prefix),
            &[range.len()],
            &p.data[range],
        ))
    }
}

/// `vision_model.onnx`: `pixel_values` [b, 3, S, S] → `last_hidden_state` [b, tokens, hidden].
/// `prefix` is prepended to every weight name (e.g. `vision_model.`).
pub fn vision_graph(
    dims: &VisionDims,
    weights: &Weights,
    prefix: &str,
) -> Result<ModelProto, ExportError> {
    let w = Init { weights, prefix };
    let (d, p) = (dims.hidden, dims.patch_size);
    let heads = Heads::new(dims.heads, d);
    let mut g = GraphBuilder::new();
    let s = dims.image_size as i64;
    let x = g.input(
        "pixel_values",
        DataType::Float,
        &[
            Dim::Named("batch"),
            Dim::Fixed(3),
            Dim::Fixed(s),
            Dim::Fixed(s),
        ],
    );
    let conv_w = w.add(&mut g, "embeddings.patch_embedding.weight", &[d, 3, p, p])?;
    let conv_b = w.add(&mut g, "embeddings.patch_embedding.bias", &[d])?;
    let pk = p as i64;
    let patches = g.op(
        "Conv",
        &[&x, &conv_w, &conv_b],
        vec![ints("kernel_shape", &[pk, pk]), ints("strides", &[pk, pk])],
    );
    let flat_shape = g.i64_const(&[0, d as i64, -1]);
    let flat = g.op("Reshape", &[&patches, &flat_shape], vec![]);
    let tokens = g.op("Transpose", &[&flat], vec![ints("perm", &[0, 2, 1])]);
    // The class token, one per batch row: Expand [1, 1, D] to [B, 1, D].
    let cls = w.add(&mut g, "embeddings.class_embedding", &[1, 1, d])?;
    let shape = g.op("Shape", &[&x], vec![]);
    let zero = g.i64_const(&[0]);
    let batch = g.op("Gather", &[&shape, &zero], vec![]);
    let rest = g.i64_const(&[1, d as i64]);
    let cls_shape = g.op("Concat", &[&batch, &rest], vec![int("axis", 0)]);
    let cls = g.op("Expand", &[&cls, &cls_shape], vec![]);
    let mut h = g.op("Concat", &[&cls, &tokens], vec![int("axis", 1)]);
    let pos = w.add(
        &mut g,
        "embeddings.position_embedding",
        &[1, dims.tokens(), d],
    )?;
    h = g.op("Add", &[&h, &pos], vec![]);
    for i in 0..dims.layers {
        let l = format!("encoder.layers.{i}.");
        let n = |s: &str| format!("{l}{s}");
        let ln1 = (
            w.add(&mut g, &n("layer_norm1.weight"), &[d])?,
            w.add(&mut g, &n("layer_norm1.bias"), &[d])?,
        );
        let a = layer_norm(&mut g, &h, &ln1.0, &ln1.1);
        let mut qkv = Vec::new();
        for (j, part) in ["q", "k", "v"].iter().enumerate() {
            let wm = w.linear_rows(
                &mut g,
                &n("self_attn.qkv.weight"),
                [3 * d, d],
                j * d..(j + 1) * d,
                &n(&format!("self_attn.{part}.weight")),
            )?;
            let b = w.slice(
                &mut g,
                &n("self_attn.qkv.bias"),
                3 * d,
                j * d..(j + 1) * d,
                &n(&format!("self_attn.{part}.bias")),
            )?;
            qkv.push(linear(&mut g, &a, &wm, Some(&b)));
        }
        let (k, v) = (heads.split(&mut g, &qkv[1]), heads.split(&mut g, &qkv[2]));
        let ctx = attention(&mut g, &heads, &qkv[0], &k, &v, None);
        let pw = w.linear_rows(
            &mut g,
            &n("self_attn.projection.weight"),
            [d, d],
            0..d,
            &n("self_attn.projection.weight"),
        )?;
        let pb = w.add(&mut g, &n("self_attn.projection.bias"), &[d])?;
        let o = linear(&mut g, &ctx, &pw, Some(&pb));
        h = g.op("Add", &[&h, &o], vec![]);
        let ln2 = (
            w.add(&mut g, &n("layer_norm2.weight"), &[d])?,
            w.add(&mut g, &n("layer_norm2.bias"), &[d])?,
        );
        let a = layer_norm(&mut g, &h, &ln2.0, &ln2.1);
        let m = dims.intermediate;
        let f1 = w.linear_rows(
            &mut g,
            &n("mlp.fc1.weight"),
            [m, d],
            0..m,
            &n("mlp.fc1.weight"),
        )?;
        let b1 = w.add(&mut g, &n("mlp.fc1.bias"), &[m])?;
        let f2 = w.linear_rows(
            &mut g,
            &n("mlp.fc2.weight"),
            [d, m],
            0..d,
            &n("mlp.fc2.weight"),
        )?;
        let b2 = w.add(&mut g, &n("mlp.fc2.bias"), &[d])?;
        let up = linear(&mut g, &a, &f1, Some(&b1));
        let act = gelu(&mut g, &up);
        let down = linear(&mut g, &act, &f2, Some(&b2));
        h = g.op("Add", &[&h, &down], vec![]);
    }
    let post = (
        w.add(&mut g, "post_layernorm.weight", &[d])?,
        w.add(&mut g, "post_layernorm.bias", &[d])?,
    );
    crate::onnx::layers::layer_norm_into(&mut g, &h, &post.0, &post.1, "last_hidden_state");
    g.output(
        "last_hidden_state",
        DataType::Float,
        &[
            Dim::Named("batch"),
            Dim::Fixed(dims.tokens() as i64),
            Dim::Fixed(d as i64),
        ],
    );
    Ok(g.finish("blip_vision_model", 17))
}

/// A whole BLIP, as BlipForQuestionAnswering names its parameters (`vision_model.`, `text_encoder.`,
/// `text_decoder.bert.`, `text_decoder.cls.`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlipDims {
    pub vision: VisionDims,
    pub text: TextDims,
}

impl BlipDims {
    pub fn parameters(&self) -> Vec<(String, Vec<usize>)> {
        let with = |prefix: &str, v: Vec<(String, Vec<usize>)>| {
            v.into_iter()
                .map(|(n, d)| (format!("{prefix}{n}"), d))
                .collect::<Vec<_>>()
        };
        let mut all = with("vision_model.", self.vision.parameters());
        all.extend(with("text_encoder.", self.text.parameters()));
        all.extend(with("text_decoder.bert.", self.text.parameters()));
        all.extend(with("text_decoder.cls.", head_parameters(&self.text)));
        all
    }
}

/// Writes the three graphs, `tokenizer.json` and `blip.json` of a BLIP into `dir` (which must exist).
pub fn write_folder(
    dir: &std::path::Path,
    dims: &BlipDims,
    weights: &Weights,
    tokenizer: &tokenizers::Tokenizer,
    config: &super::BlipConfig,
) -> anyhow::Result<()> {
    use super::model::{
        CONFIG_FILE, TEXT_DECODER_FILE, TEXT_ENCODER_FILE, TOKENIZER_FILE, VISION_FILE,
    };
    let graphs = [
        (
            VISION_FILE,
            vision_graph(&dims.vision, weights, "vision_model.")?,
        ),
        (
            TEXT_ENCODER_FILE,
            text_encoder_graph(&dims.text, weights, "text_encoder.")?,
        ),
        (
            TEXT_DECODER_FILE,
            text_decoder_graph(
                &dims.text,
                weights,
                "text_decoder.bert.",
                "text_decoder.cls.",
            )?,
        ),
    ];
    for (file, graph) in graphs {
        crate::onnx::write_model(&graph, &dir.join(file))?;
    }
    super::tokenizer::save(tokenizer, &dir.join(TOKENIZER_FILE)).map_err(anyhow::Error::msg)?;
    let text = serde_json::to_string_pretty(config)? + "\n";
    crate::fsutil::write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())?;
    Ok(())
}

/// BERT's LayerNorm epsilon, which BLIP's text model keeps.
const TEXT_LN_EPS: f32 = 1e-12;

/// The text model's sizes (BlipTextConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextDims {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub max_positions: usize,
    /// Width of the states cross-attention reads (the vision model's hidden size).
    pub encoder_width: usize,
}

impl TextDims {
    /// blip-vqa-base's text encoder and decoder.
    pub const BASE: TextDims = TextDims {
        hidden: 768,
        layers: 12,
        heads: 12,
        intermediate: 3072,
        vocab: 30_524,
        max_positions: 512,
        encoder_width: 768,
    };

    /// The parameters of BlipTextModel (embeddings and layers with cross-attention).
    pub fn parameters(&self) -> Vec<(String, Vec<usize>)> {
        let (d, m, e) = (self.hidden, self.intermediate, self.encoder_width);
        let mut v = vec![
            (
                "embeddings.word_embeddings.weight".to_string(),
                vec![self.vocab, d],
            ),
            (
                "embeddings.position_embeddings.weight".into(),
                vec![self.max_positions, d],
            ),
            ("embeddings.LayerNorm.weight".into(), vec![d]),
            ("embeddings.LayerNorm.bias".into(), vec![d]),
        ];
        for i in 0..self.layers {
            let l = format!("encoder.layer.{i}");
            for (block, kv_width) in [("attention", d), ("crossattention", e)] {
                for (name, dims) in [
                    ("self.query.weight", vec![d, d]),
                    ("self.query.bias", vec![d]),
                    ("self.key.weight", vec![d, kv_width]),
                    ("self.key.bias", vec![d]),
                    ("self.value.weight", vec![d, kv_width]),
                    ("self.value.bias", vec![d]),
                    ("output.dense.weight", vec![d, d]),
                    ("output.dense.bias", vec![d]),
                    ("output.LayerNorm.weight", vec![d]),
                    ("output.LayerNorm.bias", vec![d]),
                ] {
                    v.push((format!("{l}.{block}.{name}"), dims));
                }
            }
            for (name, dims) in [
                ("intermediate.dense.weight", vec![m, d]),
                ("intermediate.dense.bias", vec![m]),
                ("output.dense.weight", vec![d, m]),
                ("output.dense.bias", vec![d]),
                ("output.LayerNorm.weight", vec![d]),
                ("output.LayerNorm.bias", vec![d]),
            ] {
                v.push((format!("{l}.{name}"), dims));
            }
        }
        v
    }
}

impl Init<'_> {
    /// A PyTorch Linear (weight [out, in], bias [out]) applied to `x`.
    fn dense(
        &self,
        g: &mut GraphBuilder,
        x: &str,
        name: &str,
        out: usize,
        inp: usize,
    ) -> Result<String, ExportError> {
        let w = self.linear_rows(
            g,
            &format!("{name}.weight"),
            [out, inp],
            0..out,
            &format!("{name}.weight"),
        )?;
        let b = self.add(g, &format!("{name}.bias"), &[out])?;
        Ok(linear(g, x, &w, Some(&b)))
    }

    /// LayerNorm(x + residual) with BERT's epsilon.
    fn add_norm(
        &self,
        g: &mut GraphBuilder,
        x: &str,
        residual: &str,
        name: &str,
        d: usize,
    ) -> Result<String, ExportError> {
        let sum = g.op("Add", &[x, residual], vec![]);
        let gamma = self.add(g, &format!("{name}.weight"), &[d])?;
        let beta = self.add(g, &format!("{name}.bias"), &[d])?;
        Ok(layer_norm_eps(g, &sum, &gamma, &beta, TEXT_LN_EPS))
    }
}

/// [B, S] int64 mask → additive [B, 1, 1, S]: 0 where attended, −10000 where masked (BERT's extended mask).
fn additive_mask(g: &mut GraphBuilder, mask: &str) -> String {
    let m = g.op("Cast", &[mask], vec![int("to", DataType::Float as i64)]);
    let one = g.f32_scalar(1.0);
    let inv = g.op("Sub", &[&one, &m], vec![]);
    let big = g.f32_scalar(-10_000.0);
    let add = g.op("Mul", &[&inv, &big], vec![]);
    let axes = g.i64_const(&[1, 2]);
    g.op("Unsqueeze", &[&add, &axes], vec![])
}

/// Which text graph to write: the encoder, or the decoder step with its cache and language-model head
/// (whose weights live under `head_prefix`).
enum Role<'a> {
    Encoder,
    Decoder { head_prefix: &'a str },
}

/// `text_encoder.onnx`: the question attending to itself and to the image →
/// `last_hidden_state` [b, t, hidden].
pub fn text_encoder_graph(
    dims: &TextDims,
    weights: &Weights,
    prefix: &str,
) -> Result<ModelProto, ExportError> {
    text_graph(dims, weights, prefix, Role::Encoder)
}

/// `text_decoder_with_past.onnx`: new tokens attending causally to the cache and themselves and to the
/// encoder states → `logits` [b, t, vocab] and the grown cache `present.N.key/value`. BERT weights under
/// `prefix` (e.g. `text_decoder.bert.`), the head's under `head_prefix` (`text_decoder.cls.`).
pub fn text_decoder_graph(
    dims: &TextDims,
    weights: &Weights,
    prefix: &str,
    head_prefix: &str,
) -> Result<ModelProto, ExportError> {
    text_graph(dims, weights, prefix, Role::Decoder { head_prefix })
}

/// The decoder head's parameters (BlipTextOnlyMLMHead), relative to `cls.`.
pub fn head_parameters(dims: &TextDims) -> Vec<(String, Vec<usize>)> {
    let d = dims.hidden;
    vec![
        ("predictions.transform.dense.weight".into(), vec![d, d]),
        ("predictions.transform.dense.bias".into(), vec![d]),
        ("predictions.transform.LayerNorm.weight".into(), vec![d]),
        ("predictions.transform.LayerNorm.bias".into(), vec![d]),
        ("predictions.decoder.weight".into(), vec![dims.vocab, d]),
        ("predictions.bias".into(), vec![dims.vocab]),
    ]
}

fn scalar_of(g: &mut GraphBuilder, one_element: &str) -> String {
    let axes = g.i64_const(&[0]);
    g.op("Squeeze", &[one_element, &axes], vec![])
}

/// Additive causal mask [t, past + t]: new token i (at position past + i) sees positions ≤ past + i.
fn causal_mask(g: &mut GraphBuilder, past_len: &str, new_len: &str) -> String {
    let (p, n) = (scalar_of(g, past_len), scalar_of(g, new_len));
    let total = g.op("Add", &[&p, &n], vec![]);
    let (zero, one) = (g.i64_const(&[0]), g.i64_const(&[1]));
    let (zero, one) = (scalar_of(g, &zero), scalar_of(g, &one));
    let rows = g.op("Range", &[&p, &total, &one], vec![]);
    let cols = g.op("Range", &[&zero, &total, &one], vec![]);
    let ax1 = g.i64_const(&[1]);
    let ax0 = g.i64_const(&[0]);
    let rows = g.op("Unsqueeze", &[&rows, &ax1], vec![]);
    let cols = g.op("Unsqueeze", &[&cols, &ax0], vec![]);
    let future = g.op("Greater", &[&cols, &rows], vec![]);
    let f = g.op("Cast", &[&future], vec![int("to", DataType::Float as i64)]);
    let big = g.f32_scalar(-10_000.0);
    g.op("Mul", &[&f, &big], vec![])
}

fn text_graph(
    dims: &TextDims,
    weights: &Weights,
    prefix: &str,
    role: Role,
) -> Result<ModelProto, ExportError> {
    let w = Init { weights, prefix };
    let d = dims.hidden;
    let heads = Heads::new(dims.heads, d);
    let decoder = matches!(role, Role::Decoder { .. });
    let mut g = GraphBuilder::new();
    let (b, t, s) = (
        Dim::Named("batch"),
        Dim::Named("tokens"),
        Dim::Named("encoder_tokens"),
    );
    let all = if decoder {
        Dim::Named("past_and_new")
    } else {
        t.clone()
    };
    let ids = g.input("input_ids", DataType::Int64, &[b.clone(), t.clone()]);
    let mask = g.input("attention_mask", DataType::Int64, &[b.clone(), all]);
    let enc = g.input(
        "encoder_hidden_states",
        DataType::Float,
        &[b.clone(), s.clone(), Dim::Fixed(dims.encoder_width as i64)],
    );
    let enc_mask = g.input("encoder_attention_mask", DataType::Int64, &[b.clone(), s]);
    let cache_dims = [
        b.clone(),
        Dim::Fixed(dims.heads as i64),
        Dim::Named("past"),
        Dim::Fixed((d / dims.heads) as i64),
    ];
    let grown_dims = [
        b.clone(),
        Dim::Fixed(dims.heads as i64),
        Dim::Named("past_and_new"),
        Dim::Fixed((d / dims.heads) as i64),
    ];
    let past: Vec<[String; 2]> = if decoder {
        (0..dims.layers)
            .map(|i| {
                ["key", "value"].map(|kind| {
                    g.input(
                        &format!("past_key_values.{i}.{kind}"),
                        DataType::Float,
                        &cache_dims,
                    )
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let words = w.add(
        &mut g,
        "embeddings.word_embeddings.weight",
        &[dims.vocab, d],
    )?;
    let positions = w.add(
        &mut g,
        "embeddings.position_embeddings.weight",
        &[dims.max_positions, d],
    )?;
    let tok = g.op("Gather", &[&words, &ids], vec![]);
    // Positions past … past + t − 1 (past = 0 for the encoder).
    let shape = g.op("Shape", &[&ids], vec![]);
    let (zero, one, two) = (g.i64_const(&[0]), g.i64_const(&[1]), g.i64_const(&[2]));
    let new_len = g.op("Gather", &[&shape, &one], vec![]);
    let past_len = match past.first() {
        Some([k, _]) => {
            let ks = g.op("Shape", &[k], vec![]);
            g.op("Gather", &[&ks, &two], vec![])
        }
        None => zero.clone(),
    };
    let end = g.op("Add", &[&past_len, &new_len], vec![]);
    let pos = g.op("Slice", &[&positions, &past_len, &end, &zero], vec![]);
    let emb = g.op("Add", &[&tok, &pos], vec![]);
    let gamma = w.add(&mut g, "embeddings.LayerNorm.weight", &[d])?;
    let beta = w.add(&mut g, "embeddings.LayerNorm.bias", &[d])?;
    let mut h = layer_norm_eps(&mut g, &emb, &gamma, &beta, TEXT_LN_EPS);
    let mut self_mask = additive_mask(&mut g, &mask);
    if decoder {
        let causal = causal_mask(&mut g, &past_len, &new_len);
        self_mask = g.op("Add", &[&self_mask, &causal], vec![]);
    }
    let cross_mask = additive_mask(&mut g, &enc_mask);
    for i in 0..dims.layers {
        let l = format!("encoder.layer.{i}");
        for (block, cross) in [("attention", false), ("crossattention", true)] {
            let n = format!("{l}.{block}");
            let (src, width, m) = if cross {
                (&enc, dims.encoder_width, &cross_mask)
            } else {
                (&h, d, &self_mask)
            };
            let q = w.dense(&mut g, &h, &format!("{n}.self.query"), d, d)?;
            let k = w.dense(&mut g, src, &format!("{n}.self.key"), d, width)?;
            let v = w.dense(&mut g, src, &format!("{n}.self.value"), d, width)?;
            let (mut k, mut v) = (heads.split(&mut g, &k), heads.split(&mut g, &v));
            if let (false, Some([pk, pv])) = (cross, past.get(i)) {
                for (kind, new, old) in [("key", &mut k, pk), ("value", &mut v, pv)] {
                    let present = format!("present.{i}.{kind}");
                    g.op_into(
                        "Concat",
                        &[old, new.as_str()],
                        vec![int("axis", 2)],
                        &[&present],
                    );
                    g.output(&present, DataType::Float, &grown_dims);
                    *new = present;
                }
            }
            let ctx = attention(&mut g, &heads, &q, &k, &v, Some(m));
            let o = w.dense(&mut g, &ctx, &format!("{n}.output.dense"), d, d)?;
            h = w.add_norm(&mut g, &o, &h, &format!("{n}.output.LayerNorm"), d)?;
        }
        let up = w.dense(
            &mut g,
            &h,
            &format!("{l}.intermediate.dense"),
            dims.intermediate,
            d,
        )?;
        let act = gelu(&mut g, &up);
        let down = w.dense(
            &mut g,
            &act,
            &format!("{l}.output.dense"),
            d,
            dims.intermediate,
        )?;
        h = w.add_norm(&mut g, &down, &h, &format!("{l}.output.LayerNorm"), d)?;
    }
    match role {
        Role::Encoder => {
            g.op_into("Identity", &[&h], vec![], &["last_hidden_state"]);
            g.output(
                "last_hidden_state",
                DataType::Float,
                &[b, t, Dim::Fixed(d as i64)],
            );
            Ok(g.finish("blip_text_encoder", 17))
        }
        Role::Decoder { head_prefix } => {
            let head = Init {
                weights,
                prefix: head_prefix,
            };
            let x = head.dense(&mut g, &h, "predictions.transform.dense", d, d)?;
            let x = gelu(&mut g, &x);
            let gamma = head.add(&mut g, "predictions.transform.LayerNorm.weight", &[d])?;
            let beta = head.add(&mut g, "predictions.transform.LayerNorm.bias", &[d])?;
            let x = layer_norm_eps(&mut g, &x, &gamma, &beta, TEXT_LN_EPS);
            let wd = head.linear_rows(
                &mut g,
                "predictions.decoder.weight",
                [dims.vocab, d],
                0..dims.vocab,
                "predictions.decoder.weight",
            )?;
            let bias = head.add(&mut g, "predictions.bias", &[dims.vocab])?;
            let logits = linear(&mut g, &x, &wd, Some(&bias));
            g.op_into("Identity", &[&logits], vec![], &["logits"]);
            g.output(
                "logits",
                DataType::Float,
                &[b, t, Dim::Fixed(dims.vocab as i64)],
            );
            Ok(g.finish("blip_text_decoder_with_past", 17))
        }
    }
}
