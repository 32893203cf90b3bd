//! CTranslate2 Whisper → ONNX in Hugging Face optimum's layout:
//! `encoder_model.onnx`, `decoder_model.onnx`, `decoder_with_past_model.onnx`, plus `config.json` and
//! `tokenizer.json`. The graphs mirror what `optimum-cli export onnx` produces for Whisper (opset 17,
//! separate q/k/v MatMuls, erf GELU, LayerNormalization), so the quantizer sees the same shapes of graph
//! whether a folder came from us or from optimum.

use std::path::{Path, PathBuf};

use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::{write_model, Dim, GraphBuilder};

use super::ct2::{Ct2Error, Ct2Model};
use super::model::{DECODER_FILE, DECODER_PAST_FILE, ENCODER_FILE};
use crate::onnx::layers::{attention, gelu, layer_norm, linear, Heads};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Ct2(#[from] Ct2Error),
    #[error(transparent)]
    Onnx(#[from] crate::onnx::OnnxIoError),
    #[error("{path}: {what}")]
    Folder { path: PathBuf, what: String },
}

pub const OPSET: i64 = 17;

/// Dimensions read off the CT2 weights.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub d_model: usize,
    pub n_mels: usize,
    pub enc_layers: usize,
    pub dec_layers: usize,
    pub enc_heads: usize,
    pub dec_heads: usize,
    pub vocab: usize,
    pub n_audio_ctx: usize,
    pub n_text_ctx: usize,
}

fn count_layers(m: &Ct2Model, prefix: &str) -> usize {
    (0..)
        .take_while(|i| m.has(&format!("{prefix}/layer_{i}/ffn/linear_0/weight")))
        .count()
}

pub fn dims(m: &Ct2Model) -> Result<Dims, Ct2Error> {
    let conv1 = m.shape("encoder/conv1/weight", 3)?;
    let emb = m.shape("decoder/embeddings/weight", 2)?;
    let enc_pos = m.shape("encoder/position_encodings/encodings", 2)?;
    let dec_pos = m.shape("decoder/position_encodings/encodings", 2)?;
    // Bounds well above Whisper large's (d_model 1280, 128 mels, vocab 51 866, 1500 / 448 positions).
    for (name, value, max) in [
        ("encoder/conv1/weight", conv1[0], 16_384),
        ("encoder/conv1/weight", conv1[1], 512),
        ("decoder/embeddings/weight", emb[0], 1 << 20),
        ("encoder/position_encodings/encodings", enc_pos[0], 1 << 16),
        ("decoder/position_encodings/encodings", dec_pos[0], 1 << 16),
    ] {
        if value == 0 || value > max {
            return Err(Ct2Error::Shape {
                path: m.path.clone(),
                name: name.into(),
                shape: m.get(name)?.shape.clone(),
                expected: format!("dimensions in 1..={max}"),
            });
        }
    }
    let d_model = conv1[0];
    for name in ["encoder/num_heads", "decoder/num_heads"] {
        let heads = m.scalar(name)?;
        if heads <= 0 || d_model % heads as usize != 0 {
            return Err(Ct2Error::Shape {
                path: m.path.clone(),
                name: name.into(),
                shape: vec![heads.max(0) as usize],
                expected: format!("a positive divisor of d_model {d_model}"),
            });
        }
    }
    Ok(Dims {
        d_model,
        n_mels: conv1[1],
        enc_layers: count_layers(m, "encoder"),
        dec_layers: count_layers(m, "decoder"),
        enc_heads: m.scalar("encoder/num_heads")? as usize,
        dec_heads: m.scalar("decoder/num_heads")? as usize,
        vocab: emb[0],
        n_audio_ctx: enc_pos[0],
        n_text_ctx: dec_pos[0],
    })
}

/// Converts a CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json) into `out`.
/// Files are written into a temp folder that is renamed into place at the end.
/// With `seal`, the folder records its files under that key (a cache entry). `mode` says what happens to
/// a folder already at `out`.
pub fn convert(
    ct2_dir: &Path,
    out: &Path,
    seal: Option<&str>,
    mode: crate::fsutil::Publish,
) -> Result<(), ExportError> {
    let model = Ct2Model::open(&ct2_dir.join("model.bin"))?;
    if model.spec_name != "WhisperSpec" {
        return Err(ExportError::Folder {
            path: ct2_dir.join("model.bin"),
            what: format!("is a `{}`, not a WhisperSpec model", model.spec_name),
        });
    }
    let d = dims(&model)?;
    let ct2_config = read_json(&ct2_dir.join("config.json"))?;
    let tokenizer = ct2_dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        return Err(ExportError::Folder {
            path: tokenizer,
            what: "missing (a CTranslate2 Whisper folder needs tokenizer.json)".into(),
        });
    }

    let parent = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| folder_err(parent, e))?;
    let tmp = crate::fsutil::work_dir(parent, "convert").map_err(|e| folder_err(parent, e))?;

    for (file, graph) in graphs(&model, &d)? {
        write_model(&graph, &tmp.path().join(file))?;
    }
    std::fs::copy(&tokenizer, tmp.path().join("tokenizer.json"))
        .map_err(|e| folder_err(&tokenizer, e))?;
    let config = hf_config(&d, &ct2_config);
    let config_path = tmp.path().join("config.json");
    crate::fsutil::write_atomic(
        &config_path,
        serde_json::to_string_pretty(&config)
            .map_err(|e| folder_err(&config_path, std::io::Error::other(e)))?
            .as_bytes(),
    )
    .map_err(|e| folder_err(&config_path, e))?;

    if let Some(key) = seal {
        crate::assets::entry::seal(tmp.path(), key).map_err(|e| folder_err(tmp.path(), e))?;
    }
    crate::fsutil::publish_dir(tmp, out, mode).map_err(|e| folder_err(out, e))?;
    Ok(())
}

/// The three graphs of optimum's layout, by file name, built from a CTranslate2 model.
pub fn graphs(
    model: &Ct2Model,
    d: &Dims,
) -> Result<[(&'static str, crate::onnx::proto::ModelProto); 3], Ct2Error> {
    Ok([
        (ENCODER_FILE, encoder_graph(model, d)?),
        (DECODER_FILE, decoder_graph(model, d, false)?),
        (DECODER_PAST_FILE, decoder_graph(model, d, true)?),
    ])
}

fn folder_err(path: &Path, e: std::io::Error) -> ExportError {
    ExportError::Folder {
        path: path.to_path_buf(),
        what: e.to_string(),
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, ExportError> {
    let text = std::fs::read_to_string(path).map_err(|e| folder_err(path, e))?;
    serde_json::from_str(&text).map_err(|e| ExportError::Folder {
        path: path.to_path_buf(),
        what: format!("not valid JSON: {e}"),
    })
}

/// The subset of Hugging Face's WhisperConfig that the pipeline reads.
fn hf_config(d: &Dims, ct2: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "model_type": "whisper",
        "d_model": d.d_model,
        "num_mel_bins": d.n_mels,
        "encoder_layers": d.enc_layers,
        "decoder_layers": d.dec_layers,
        "encoder_attention_heads": d.enc_heads,
        "decoder_attention_heads": d.dec_heads,
        "vocab_size": d.vocab,
        "max_source_positions": d.n_audio_ctx,
        "max_target_positions": d.n_text_ctx,
        "suppress_tokens": ct2.get("suppress_ids").cloned().unwrap_or_default(),
        "begin_suppress_tokens": ct2.get("suppress_ids_begin").cloned().unwrap_or_default(),
        "converted_by": format!("quantbench {}", env!("CARGO_PKG_VERSION")),
    })
}

/// CT2 Linear weight [out, in] → ONNX MatMul initializer [in, out].
fn transposed(shape: &[usize], w: &[f32]) -> Vec<f32> {
    let (rows, cols) = (shape[0], shape[1]);
    let mut t = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

struct Weights<'a> {
    m: &'a Ct2Model,
    d: usize,
}

impl Weights<'_> {
    fn vec(&self, name: &str, len: usize) -> Result<Vec<f32>, Ct2Error> {
        Ok(self.m.tensor(name, &[len])?.1)
    }

    /// Rows [from, to) of a fused [k*D, D] weight (and its bias), transposed for MatMul.
    fn linear_rows(
        &self,
        base: &str,
        from: usize,
        to: usize,
        bias: bool,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>), Ct2Error> {
        let (shape, w) = self.m.tensor(&format!("{base}/weight"), &[0, 0])?;
        if to > shape[0] {
            return Err(Ct2Error::Shape {
                path: self.m.path.clone(),
                name: format!("{base}/weight"),
                shape,
                expected: format!("at least {to} rows"),
            });
        }
        let cols = shape[1];
        let part = &w[from * cols..to * cols];
        let wt = transposed(&[to - from, cols], part);
        let b = if bias {
            let (_, b) = self.m.tensor(&format!("{base}/bias"), &[shape[0]])?;
            Some(b[from..to].to_vec())
        } else {
            None
        };
        Ok((wt, b))
    }
}

/// Adds a Linear (MatMul + optional Add) reading rows [from,to) of a CT2 weight.
#[allow(clippy::too_many_arguments)]
fn ct2_linear(
    g: &mut GraphBuilder,
    w: &Weights,
    x: &str,
    base: &str,
    rows: (usize, usize),
    bias: bool,
    hf_name: &str,
) -> Result<String, Ct2Error> {
    let (wt, b) = w.linear_rows(base, rows.0, rows.1, bias)?;
    let (shape, _) = w.m.tensor(&format!("{base}/weight"), &[0, 0])?;
    let in_dim = shape[1];
    let out_dim = rows.1 - rows.0;
    let wname = g.f32_init(&format!("{hf_name}.weight"), &[in_dim, out_dim], &wt);
    let bname = b.map(|b| g.f32_init(&format!("{hf_name}.bias"), &[out_dim], &b));
    Ok(linear(g, x, &wname, bname.as_deref()))
}

fn ct2_layer_norm(
    g: &mut GraphBuilder,
    w: &Weights,
    x: &str,
    base: &str,
    hf_name: &str,
) -> Result<String, Ct2Error> {
    let gamma = w.vec(&format!("{base}/gamma"), w.d)?;
    let beta = w.vec(&format!("{base}/beta"), w.d)?;
    let gname = g.f32_init(&format!("{hf_name}.weight"), &[w.d], &gamma);
    let bname = g.f32_init(&format!("{hf_name}.bias"), &[w.d], &beta);
    Ok(layer_norm(g, x, &gname, &bname))
}

fn ffn(
    g: &mut GraphBuilder,
    w: &Weights,
    x: &str,
    ct2: &str,
    hf: &str,
) -> Result<String, Ct2Error> {
    let h = ct2_layer_norm(
        g,
        w,
        x,
        &format!("{ct2}/ffn/layer_norm"),
        &format!("{hf}.final_layer_norm"),
    )?;
    let f = w.m.shape(&format!("{ct2}/ffn/linear_0/weight"), 2)?[0];
    let h = ct2_linear(
        g,
        w,
        &h,
        &format!("{ct2}/ffn/linear_0"),
        (0, f),
        true,
        &format!("{hf}.fc1"),
    )?;
    let h = gelu(g, &h);
    let h = ct2_linear(
        g,
        w,
        &h,
        &format!("{ct2}/ffn/linear_1"),
        (0, w.d),
        true,
        &format!("{hf}.fc2"),
    )?;
    Ok(g.op("Add", &[x, &h], vec![]))
}

/// Pre-norm self-attention projections of one layer: q [B,T,D] and per-head k, v [B,H,T,hd], split out of
/// CT2's fused q/k/v weight (k has no bias).
fn self_attention_qkv(
    g: &mut GraphBuilder,
    w: &Weights,
    heads: &Heads,
    x: &str,
    ct2: &str,
    hf: &str,
) -> Result<(String, String, String), Ct2Error> {
    let a = format!("{ct2}/self_attention");
    let h = ct2_layer_norm(
        g,
        w,
        x,
        &format!("{a}/layer_norm"),
        &format!("{hf}.self_attn_layer_norm"),
    )?;
    let (dm, fused) = (w.d, format!("{a}/linear_0"));
    let q = ct2_linear(
        g,
        w,
        &h,
        &fused,
        (0, dm),
        true,
        &format!("{hf}.self_attn.q_proj"),
    )?;
    let k = ct2_linear(
        g,
        w,
        &h,
        &fused,
        (dm, 2 * dm),
        false,
        &format!("{hf}.self_attn.k_proj"),
    )?;
    let v = ct2_linear(
        g,
        w,
        &h,
        &fused,
        (2 * dm, 3 * dm),
        true,
        &format!("{hf}.self_attn.v_proj"),
    )?;
    let (kh, vh) = (heads.split(g, &k), heads.split(g, &v));
    Ok((q, kh, vh))
}

/// x + out_proj(o): an attention block's output projection and its residual connection.
fn residual_out_proj(
    g: &mut GraphBuilder,
    w: &Weights,
    x: &str,
    o: &str,
    base: &str,
    hf: &str,
) -> Result<String, Ct2Error> {
    let o = ct2_linear(g, w, o, base, (0, w.d), true, hf)?;
    Ok(g.op("Add", &[x, &o], vec![]))
}

fn encoder_graph(m: &Ct2Model, d: &Dims) -> Result<crate::onnx::proto::ModelProto, Ct2Error> {
    use crate::onnx::attr::ints;
    let w = Weights { m, d: d.d_model };
    let mut g = GraphBuilder::new();
    let x = g.input(
        "input_features",
        DataType::Float,
        &[
            Dim::Named("batch_size"),
            Dim::Fixed(d.n_mels as i64),
            Dim::Fixed(2 * d.n_audio_ctx as i64),
        ],
    );
    let mut h = x;
    for (i, stride) in [(1, 1), (2, 2)] {
        let (shape, wt) = m.tensor(&format!("encoder/conv{i}/weight"), &[d.d_model, 0, 3])?;
        let (_, b) = m.tensor(&format!("encoder/conv{i}/bias"), &[d.d_model])?;
        let wn = g.f32_init(&format!("model.encoder.conv{i}.weight"), &shape, &wt);
        let bn = g.f32_init(&format!("model.encoder.conv{i}.bias"), &[d.d_model], &b);
        let c = g.op(
            "Conv",
            &[&h, &wn, &bn],
            vec![
                ints("pads", &[1, 1]),
                ints("strides", &[stride]),
                ints("kernel_shape", &[3]),
            ],
        );
        h = gelu(&mut g, &c);
    }
    let h = g.op("Transpose", &[&h], vec![ints("perm", &[0, 2, 1])]);
    let (_, pos) = m.tensor(
        "encoder/position_encodings/encodings",
        &[d.n_audio_ctx, d.d_model],
    )?;
    let pn = g.f32_init(
        "model.encoder.embed_positions.weight",
        &[d.n_audio_ctx, d.d_model],
        &pos,
    );
    let mut x = g.op("Add", &[&h, &pn], vec![]);
    let heads = Heads::new(d.enc_heads, d.d_model);
    for l in 0..d.enc_layers {
        let ct2 = format!("encoder/layer_{l}");
        let hf = format!("model.encoder.layers.{l}");
        let a = format!("{ct2}/self_attention");
        let (q, kh, vh) = self_attention_qkv(&mut g, &w, &heads, &x, &ct2, &hf)?;
        let o = attention(&mut g, &heads, &q, &kh, &vh, None);
        x = residual_out_proj(
            &mut g,
            &w,
            &x,
            &o,
            &format!("{a}/linear_1"),
            &format!("{hf}.self_attn.out_proj"),
        )?;
        x = ffn(&mut g, &w, &x, &ct2, &hf)?;
    }
    let gamma = w.vec("encoder/layer_norm/gamma", d.d_model)?;
    let beta = w.vec("encoder/layer_norm/beta", d.d_model)?;
    let gn = g.f32_init("model.encoder.layer_norm.weight", &[d.d_model], &gamma);
    let bn = g.f32_init("model.encoder.layer_norm.bias", &[d.d_model], &beta);
    crate::onnx::layers::layer_norm_into(&mut g, &x, &gn, &bn, "last_hidden_state");
    g.output(
        "last_hidden_state",
        DataType::Float,
        &[
            Dim::Named("batch_size"),
            Dim::Fixed(d.n_audio_ctx as i64),
            Dim::Fixed(d.d_model as i64),
        ],
    );
    Ok(g.finish("whisper_encoder", OPSET))
}

fn decoder_graph(
    m: &Ct2Model,
    d: &Dims,
    with_past: bool,
) -> Result<crate::onnx::proto::ModelProto, Ct2Error> {
    use crate::onnx::attr::int;
    let w = Weights { m, d: d.d_model };
    let dm = d.d_model;
    let mut g = GraphBuilder::new();
    let kv_dims = |len: &'static str| {
        [
            Dim::Named("batch_size"),
            Dim::Fixed(d.dec_heads as i64),
            Dim::Named(len),
            Dim::Fixed((dm / d.dec_heads) as i64),
        ]
    };
    let ids = g.input(
        "input_ids",
        DataType::Int64,
        &[
            Dim::Named("batch_size"),
            Dim::Named("decoder_sequence_length"),
        ],
    );
    let enc = if with_past {
        None
    } else {
        Some(g.input(
            "encoder_hidden_states",
            DataType::Float,
            &[
                Dim::Named("batch_size"),
                Dim::Named("encoder_sequence_length"),
                Dim::Fixed(dm as i64),
            ],
        ))
    };
    if with_past {
        for l in 0..d.dec_layers {
            for kind in ["decoder", "encoder"] {
                for kv in ["key", "value"] {
                    let len = if kind == "decoder" {
                        "past_decoder_sequence_length"
                    } else {
                        "encoder_sequence_length_out"
                    };
                    g.input(
                        &format!("past_key_values.{l}.{kind}.{kv}"),
                        DataType::Float,
                        &kv_dims(len),
                    );
                }
            }
        }
    }

    let (_, emb) = m.tensor("decoder/embeddings/weight", &[d.vocab, dm])?;
    let en = g.f32_init("model.decoder.embed_tokens.weight", &[d.vocab, dm], &emb);
    let tok = g.op("Gather", &[&en, &ids], vec![int("axis", 0)]);

    // Positions past_len .. past_len + seq.
    let seq = {
        let s = g.op("Shape", &[&ids], vec![int("start", 1), int("end", 2)]);
        g.op("Squeeze", &[&s], vec![])
    };
    let past_len = if with_past {
        let s = g.op(
            "Shape",
            &["past_key_values.0.decoder.key"],
            vec![int("start", 2), int("end", 3)],
        );
        g.op("Squeeze", &[&s], vec![])
    } else {
        let z = g.i64_const(&[0]);
        g.op("Squeeze", &[&z], vec![])
    };
    let total = g.op("Add", &[&past_len, &seq], vec![]);
    let one = {
        let o = g.i64_const(&[1]);
        g.op("Squeeze", &[&o], vec![])
    };
    let positions = g.op("Range", &[&past_len, &total, &one], vec![]);
    let (_, pos) = m.tensor("decoder/position_encodings/encodings", &[d.n_text_ctx, dm])?;
    let pn = g.f32_init(
        "model.decoder.embed_positions.weight",
        &[d.n_text_ctx, dm],
        &pos,
    );
    let pe = g.op("Gather", &[&pn, &positions], vec![int("axis", 0)]);
    let mut x = g.op("Add", &[&tok, &pe], vec![]);

    // Causal mask rows [past, past+seq), columns [0, past+seq) of a [ctx, ctx] upper-triangular -inf matrix.
    let n = d.n_text_ctx;
    let mut mask = vec![0f32; n * n];
    for r in 0..n {
        for c in (r + 1)..n {
            mask[r * n + c] = f32::NEG_INFINITY;
        }
    }
    let mn = g.f32_init("causal_mask", &[n, n], &mask);
    let starts = {
        let zero = g.i64_const(&[0]);
        let axes = g.i64_const(&[0]);
        let p = g.op("Unsqueeze", &[&past_len, &axes], vec![]);
        g.op("Concat", &[&p, &zero], vec![int("axis", 0)])
    };
    let ends = {
        let axes = g.i64_const(&[0]);
        let t = g.op("Unsqueeze", &[&total, &axes], vec![]);
        g.op("Concat", &[&t, &t], vec![int("axis", 0)])
    };
    let axes = g.i64_const(&[0, 1]);
    let causal = g.op("Slice", &[&mn, &starts, &ends, &axes], vec![]);

    let heads = Heads::new(d.dec_heads, dm);
    for l in 0..d.dec_layers {
        let ct2 = format!("decoder/layer_{l}");
        let hf = format!("model.decoder.layers.{l}");
        let a = format!("{ct2}/self_attention");
        let (q, kh, vh) = self_attention_qkv(&mut g, &w, &heads, &x, &ct2, &hf)?;
        let (kh, vh) = if with_past {
            let pk = format!("past_key_values.{l}.decoder.key");
            let pv = format!("past_key_values.{l}.decoder.value");
            (
                g.op("Concat", &[&pk, &kh], vec![int("axis", 2)]),
                g.op("Concat", &[&pv, &vh], vec![int("axis", 2)]),
            )
        } else {
            (kh, vh)
        };
        let pk_out = format!("present.{l}.decoder.key");
        let pv_out = format!("present.{l}.decoder.value");
        g.op_into("Identity", &[&kh], vec![], &[&pk_out]);
        g.op_into("Identity", &[&vh], vec![], &[&pv_out]);
        let o = attention(&mut g, &heads, &q, &kh, &vh, Some(&causal));
        x = residual_out_proj(
            &mut g,
            &w,
            &x,
            &o,
            &format!("{a}/linear_1"),
            &format!("{hf}.self_attn.out_proj"),
        )?;

        let c = format!("{ct2}/attention");
        let h = ct2_layer_norm(
            &mut g,
            &w,
            &x,
            &format!("{c}/layer_norm"),
            &format!("{hf}.encoder_attn_layer_norm"),
        )?;
        let q = ct2_linear(
            &mut g,
            &w,
            &h,
            &format!("{c}/linear_0"),
            (0, dm),
            true,
            &format!("{hf}.encoder_attn.q_proj"),
        )?;
        let (ck, cv) = if let Some(enc) = &enc {
            let k = ct2_linear(
                &mut g,
                &w,
                enc,
                &format!("{c}/linear_1"),
                (0, dm),
                false,
                &format!("{hf}.encoder_attn.k_proj"),
            )?;
            let v = ct2_linear(
                &mut g,
                &w,
                enc,
                &format!("{c}/linear_1"),
                (dm, 2 * dm),
                true,
                &format!("{hf}.encoder_attn.v_proj"),
            )?;
            let kh = heads.split(&mut g, &k);
            let vh = heads.split(&mut g, &v);
            let ko = format!("present.{l}.encoder.key");
            let vo = format!("present.{l}.encoder.value");
            g.op_into("Identity", &[&kh], vec![], &[&ko]);
            g.op_into("Identity", &[&vh], vec![], &[&vo]);
            (kh, vh)
        } else {
            (
                format!("past_key_values.{l}.encoder.key"),
                format!("past_key_values.{l}.encoder.value"),
            )
        };
        let o = attention(&mut g, &heads, &q, &ck, &cv, None);
        x = residual_out_proj(
            &mut g,
            &w,
            &x,
            &o,
            &format!("{c}/linear_2"),
            &format!("{hf}.encoder_attn.out_proj"),
        )?;
        x = ffn(&mut g, &w, &x, &ct2, &hf)?;
    }
    let x = ct2_layer_norm(
        &mut g,
        &w,
        &x,
        "decoder/layer_norm",
        "model.decoder.layer_norm",
    )?;
    let (_, proj) = m.tensor("decoder/projection/weight", &[d.vocab, dm])?;
    let pt = transposed(&[d.vocab, dm], &proj);
    let pn = g.f32_init("proj_out.weight", &[dm, d.vocab], &pt);
    g.op_into_named("proj_out/MatMul", "MatMul", &[&x, &pn], vec![], &["logits"]);

    g.output(
        "logits",
        DataType::Float,
        &[
            Dim::Named("batch_size"),
            Dim::Named("decoder_sequence_length"),
            Dim::Fixed(d.vocab as i64),
        ],
    );
    for l in 0..d.dec_layers {
        for kv in ["key", "value"] {
            g.output(
                &format!("present.{l}.decoder.{kv}"),
                DataType::Float,
                &kv_dims("past_decoder_sequence_length + 1"),
            );
        }
        if !with_past {
            for kv in ["key", "value"] {
                g.output(
                    &format!("present.{l}.encoder.{kv}"),
                    DataType::Float,
                    &kv_dims("encoder_sequence_length_out"),
                );
            }
        }
    }
    let name = if with_past {
        "whisper_decoder_with_past"
    } else {
        "whisper_decoder"
    };
    Ok(g.finish(name, OPSET))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CT2 file holding only what `dims` reads; `enc_heads` is written as given.
    fn tiny_ct2(enc_heads: i16) -> Vec<u8> {
        let mut b = Vec::new();
        let put_str = |b: &mut Vec<u8>, s: &str| {
            b.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
            b.push(0);
        };
        let vars: Vec<(&str, Vec<u32>)> = vec![
            ("decoder/embeddings/weight", vec![5, 4]),
            ("decoder/position_encodings/encodings", vec![3, 4]),
            ("encoder/conv1/weight", vec![4, 2, 3]),
            ("encoder/position_encodings/encodings", vec![6, 4]),
        ];
        b.extend_from_slice(&6u32.to_le_bytes());
        put_str(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&((vars.len() + 2) as u32).to_le_bytes());
        for (name, dims) in &vars {
            put_str(&mut b, name);
            b.push(dims.len() as u8);
            dims.iter()
                .for_each(|d| b.extend_from_slice(&d.to_le_bytes()));
            b.push(0); // f32
            let n: u32 = dims.iter().product::<u32>() * 4;
            b.extend_from_slice(&n.to_le_bytes());
            b.extend(std::iter::repeat_n(0u8, n as usize));
        }
        for (name, v) in [
            ("decoder/num_heads", 2i16),
            ("encoder/num_heads", enc_heads),
        ] {
            put_str(&mut b, name);
            b.push(0);
            b.push(2); // int16
            b.extend_from_slice(&2u32.to_le_bytes());
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&0u32.to_le_bytes());
        b
    }

    #[test]
    fn dims_are_read_and_impossible_head_counts_refused() {
        let ok = Ct2Model::parse(Path::new("m.bin"), &tiny_ct2(2)).unwrap();
        let d = dims(&ok).unwrap();
        assert_eq!(
            (d.d_model, d.n_mels, d.vocab, d.n_audio_ctx, d.n_text_ctx),
            (4, 2, 5, 6, 3)
        );
        for bad in [0, 3, -1] {
            let m = Ct2Model::parse(Path::new("m.bin"), &tiny_ct2(bad)).unwrap();
            let e = dims(&m).unwrap_err().to_string();
            assert!(
                e.contains("encoder/num_heads") && e.contains("divisor"),
                "{e}"
            );
        }
    }
}
