//! The exported BLIP vision graph against a direct computation of BlipVisionModel's forward pass (patch
//! convolution, class token, positions, pre-norm attention and MLP blocks, final LayerNorm) on the same
//! seeded weights, through ONNX Runtime.

mod common;

use ort::value::Tensor;
use quantbench::models::blip::export::{
    head_parameters, random_weights, text_decoder_graph, text_encoder_graph, vision_graph, Param,
    TextDims, VisionDims, Weights,
};
use quantbench::onnx::write_model;

const DIMS: VisionDims = VisionDims {
    image_size: 32,
    patch_size: 8,
    hidden: 16,
    layers: 2,
    heads: 4,
    intermediate: 24,
};

fn w<'a>(weights: &'a Weights, name: &str) -> &'a Param {
    &weights[&format!("vision_model.{name}")]
}

fn layer_norm(x: &[f32], g: &[f32], b: &[f32]) -> Vec<f32> {
    layer_norm_eps(x, g, b, 1e-5)
}

fn layer_norm_eps(x: &[f32], g: &[f32], b: &[f32], eps: f32) -> Vec<f32> {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n;
    x.iter()
        .zip(g.iter().zip(b))
        .map(|(v, (g, b))| (v - mean) / (var + eps).sqrt() * g + b)
        .collect()
}

/// Multi-head attention of q rows over k, v rows; `masked(i, j)` drops key j for query i (BERT's −10000).
fn attend(
    q: &[Vec<f32>],
    k: &[Vec<f32>],
    v: &[Vec<f32>],
    heads: usize,
    masked: &dyn Fn(usize, usize) -> bool,
) -> Vec<Vec<f32>> {
    let d = q[0].len();
    let hd = d / heads;
    let mut out = vec![vec![0f32; d]; q.len()];
    for h in 0..heads {
        let off = h * hd;
        for (i, qi) in q.iter().enumerate() {
            let scores: Vec<f32> = k
                .iter()
                .enumerate()
                .map(|(j, kj)| {
                    let m = masked(i, j);
                    (0..hd).map(|x| qi[off + x] * kj[off + x]).sum::<f32>() / (hd as f32).sqrt()
                        - if m { 10_000.0 } else { 0.0 }
                })
                .collect();
            let mx = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
            let z: f32 = e.iter().sum();
            for x in 0..hd {
                out[i][off + x] = v.iter().zip(&e).map(|(vj, ej)| ej / z * vj[off + x]).sum();
            }
        }
    }
    out
}

/// y = x · Wᵀ + b for a PyTorch Linear weight [out, in].
fn linear(x: &[f32], p: &Param, b: &Param) -> Vec<f32> {
    let (out, inp) = (p.dims[0], p.dims[1]);
    (0..out)
        .map(|o| (0..inp).map(|i| x[i] * p.data[o * inp + i]).sum::<f32>() + b.data[o])
        .collect()
}

fn gelu(x: f32) -> f32 {
    // erf by Abramowitz–Stegun 7.1.26 is too coarse for 1e-4; use the series-free libm-equivalent via f64.
    0.5 * x * (1.0 + erf(x as f64 / std::f64::consts::SQRT_2) as f32)
}

fn erf(x: f64) -> f64 {
    // Numerical Recipes erfc with fractional error < 1.2e-7.
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        1.0 - r
    } else {
        r - 1.0
    }
}

fn reference(weights: &Weights, pixels: &[f32]) -> Vec<Vec<f32>> {
    let (s, p, d) = (DIMS.image_size, DIMS.patch_size, DIMS.hidden);
    let grid = s / p;
    let conv = w(weights, "embeddings.patch_embedding.weight");
    let conv_b = w(weights, "embeddings.patch_embedding.bias");
    let mut h: Vec<Vec<f32>> = vec![w(weights, "embeddings.class_embedding").data.clone()];
    for gy in 0..grid {
        for gx in 0..grid {
            h.push(
                (0..d)
                    .map(|o| {
                        let mut acc = conv_b.data[o];
                        for c in 0..3 {
                            for ky in 0..p {
                                for kx in 0..p {
                                    let wv = conv.data[((o * 3 + c) * p + ky) * p + kx];
                                    acc += wv * pixels[(c * s + gy * p + ky) * s + gx * p + kx];
                                }
                            }
                        }
                        acc
                    })
                    .collect(),
            );
        }
    }
    let pos = w(weights, "embeddings.position_embedding");
    for (t, row) in h.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v += pos.data[t * d + j];
        }
    }
    let hd = d / DIMS.heads;
    for l in 0..DIMS.layers {
        let n = |s: &str| format!("encoder.layers.{l}.{s}");
        let a: Vec<Vec<f32>> = h
            .iter()
            .map(|x| {
                layer_norm(
                    x,
                    &w(weights, &n("layer_norm1.weight")).data,
                    &w(weights, &n("layer_norm1.bias")).data,
                )
            })
            .collect();
        let qkv: Vec<Vec<f32>> = a
            .iter()
            .map(|x| {
                linear(
                    x,
                    w(weights, &n("self_attn.qkv.weight")),
                    w(weights, &n("self_attn.qkv.bias")),
                )
            })
            .collect();
        let t = h.len();
        let mut ctx = vec![vec![0f32; d]; t];
        for head in 0..DIMS.heads {
            let off = head * hd;
            for i in 0..t {
                let scores: Vec<f32> = (0..t)
                    .map(|j| {
                        (0..hd)
                            .map(|k| qkv[i][off + k] * qkv[j][d + off + k])
                            .sum::<f32>()
                            / (hd as f32).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f32 = e.iter().sum();
                for k in 0..hd {
                    ctx[i][off + k] = (0..t).map(|j| e[j] / z * qkv[j][2 * d + off + k]).sum();
                }
            }
        }
        for (x, c) in h.iter_mut().zip(&ctx) {
            let o = linear(
                c,
                w(weights, &n("self_attn.projection.weight")),
                w(weights, &n("self_attn.projection.bias")),
            );
            x.iter_mut().zip(o).for_each(|(x, o)| *x += o);
            let a = layer_norm(
                x,
                &w(weights, &n("layer_norm2.weight")).data,
                &w(weights, &n("layer_norm2.bias")).data,
            );
            let up: Vec<f32> = linear(
                &a,
                w(weights, &n("mlp.fc1.weight")),
                w(weights, &n("mlp.fc1.bias")),
            )
            .into_iter()
            .map(gelu)
            .collect();
            let down = linear(
                &up,
                w(weights, &n("mlp.fc2.weight")),
                w(weights, &n("mlp.fc2.bias")),
            );
            x.iter_mut().zip(down).for_each(|(x, o)| *x += o);
        }
    }
    h.iter()
        .map(|x| {
            layer_norm(
                x,
                &w(weights, "post_layernorm.weight").data,
                &w(weights, "post_layernorm.bias").data,
            )
        })
        .collect()
}

/// Distinct LayerNorm parameters, small distinct biases, weights large enough for peaked attention.
fn sharpen(weights: &mut Weights) {
    for (name, p) in weights.iter_mut() {
        if name.contains("norm") || name.contains("LayerNorm") {
            let bump = if name.ends_with("weight") { 0.9 } else { 0.05 };
            p.data
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = bump + 0.01 * (i % 7) as f32);
        } else if name.ends_with(".bias") {
            p.data
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = 0.001 * (i % 5) as f32);
        } else {
            // BERT's 0.02 leaves attention almost uniform, which would hide a wrong query or key.
            p.data.iter_mut().for_each(|v| *v *= 12.0);
        }
    }
}

/// Seeded weights under `prefix`, sharpened.
fn seeded(parameters: Vec<(String, Vec<usize>)>, prefix: &str, seed: u64) -> Weights {
    let named: Vec<(String, Vec<usize>)> = parameters
        .into_iter()
        .map(|(n, d)| (format!("{prefix}{n}"), d))
        .collect();
    let mut weights = random_weights(&named, seed);
    sharpen(&mut weights);
    weights
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

const TEXT: TextDims = TextDims {
    hidden: 16,
    layers: 2,
    heads: 4,
    intermediate: 20,
    vocab: 30,
    max_positions: 12,
    encoder_width: 8,
};

/// BlipTextModel's forward over the whole sequence; `causal` for the decoder.
fn text_reference(
    weights: &Weights,
    prefix: &str,
    causal: bool,
    (ids, mask): (&[i64], &[i64]),
    (enc, enc_mask): (&[Vec<f32>], &[i64]),
) -> Vec<Vec<f32>> {
    let w = |n: &str| &weights[&format!("{prefix}{n}")];
    let d = TEXT.hidden;
    let ln = |x: &[f32], n: &str| {
        layer_norm_eps(
            x,
            &w(&format!("{n}.weight")).data,
            &w(&format!("{n}.bias")).data,
            1e-12,
        )
    };
    let dense = |x: &[f32], n: &str| linear(x, w(&format!("{n}.weight")), w(&format!("{n}.bias")));
    let mut h: Vec<Vec<f32>> = ids
        .iter()
        .enumerate()
        .map(|(t, &id)| {
            let row: Vec<f32> = (0..d)
                .map(|j| {
                    w("embeddings.word_embeddings.weight").data[id as usize * d + j]
                        + w("embeddings.position_embeddings.weight").data[t * d + j]
                })
                .collect();
            ln(&row, "embeddings.LayerNorm")
        })
        .collect();
    let self_masked = |i: usize, j: usize| mask[j] == 0 || (causal && j > i);
    let cross_masked = |_: usize, j: usize| enc_mask[j] == 0;
    for l in 0..TEXT.layers {
        for (block, cross) in [("attention", false), ("crossattention", true)] {
            let n = format!("encoder.layer.{l}.{block}");
            let src = if cross { enc.to_vec() } else { h.clone() };
            let q: Vec<Vec<f32>> = h
                .iter()
                .map(|x| dense(x, &format!("{n}.self.query")))
                .collect();
            let k: Vec<Vec<f32>> = src
                .iter()
                .map(|x| dense(x, &format!("{n}.self.key")))
                .collect();
            let v: Vec<Vec<f32>> = src
                .iter()
                .map(|x| dense(x, &format!("{n}.self.value")))
                .collect();
            let ctx = attend(
                &q,
                &k,
                &v,
                TEXT.heads,
                if cross { &cross_masked } else { &self_masked },
            );
            h = h
                .iter()
                .zip(&ctx)
                .map(|(x, c)| {
                    let o = dense(c, &format!("{n}.output.dense"));
                    let sum: Vec<f32> = x.iter().zip(o).map(|(a, b)| a + b).collect();
                    ln(&sum, &format!("{n}.output.LayerNorm"))
                })
                .collect();
        }
        let n = format!("encoder.layer.{l}");
        h = h
            .iter()
            .map(|x| {
                let up: Vec<f32> = dense(x, &format!("{n}.intermediate.dense"))
                    .into_iter()
                    .map(gelu)
                    .collect();
                let down = dense(&up, &format!("{n}.output.dense"));
                let sum: Vec<f32> = x.iter().zip(down).map(|(a, b)| a + b).collect();
                ln(&sum, &format!("{n}.output.LayerNorm"))
            })
            .collect();
    }
    h
}

#[test]
fn text_encoder_graph_computes_bert_with_cross_attention() {
    common::context().init_runtime(&mut |_| {}).unwrap();
    let weights = seeded(TEXT.parameters(), "text_encoder.", 5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text_encoder.onnx");
    write_model(
        &text_encoder_graph(&TEXT, &weights, "text_encoder.").unwrap(),
        &path,
    )
    .unwrap();

    let ids = vec![2i64, 17, 5, 29, 3];
    let mask = vec![1i64, 1, 1, 1, 0];
    let enc: Vec<Vec<f32>> = (0..6)
        .map(|i| {
            (0..TEXT.encoder_width)
                .map(|j| ((i * 31 + j * 7) % 13) as f32 / 6.0 - 1.0)
                .collect()
        })
        .collect();
    let enc_mask = vec![1i64, 1, 1, 0, 1, 0];
    let mut session = quantbench::runtime::session(&path, 1).unwrap();
    let t = |shape: Vec<i64>, v: Vec<i64>| Tensor::from_array((shape, v)).unwrap();
    let out = session
        .run(ort::inputs! {
            "input_ids" => t(vec![1, 5], ids.clone()),
            "attention_mask" => t(vec![1, 5], mask.clone()),
            "encoder_hidden_states" => Tensor::from_array((vec![1i64, 6, TEXT.encoder_width as i64], enc.concat())).unwrap(),
            "encoder_attention_mask" => t(vec![1, 6], enc_mask.clone()),
        })
        .unwrap();
    let (shape, got) = out["last_hidden_state"]
        .try_extract_tensor::<f32>()
        .unwrap();
    assert_eq!(**shape, [1, 5, TEXT.hidden as i64]);
    let want = text_reference(
        &weights,
        "text_encoder.",
        false,
        (&ids, &mask),
        (&enc, &enc_mask),
    )
    .concat();
    let max = max_diff(got, &want);
    assert!(max < 1e-4, "largest difference {max}");
    // The masks matter: attending to everything gives another answer.
    let unmasked = text_reference(
        &weights,
        "text_encoder.",
        false,
        (&ids, &[1; 5]),
        (&enc, &[1; 6]),
    )
    .concat();
    let moved = max_diff(&unmasked, &want);
    assert!(moved > 1e-2, "masks change the output ({moved})");
}

#[test]
fn vision_graph_computes_blips_vision_model() {
    common::context().init_runtime(&mut |_| {}).unwrap();
    let weights = seeded(DIMS.parameters(), "vision_model.", 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vision_model.onnx");
    write_model(
        &vision_graph(&DIMS, &weights, "vision_model.").unwrap(),
        &path,
    )
    .unwrap();

    let s = DIMS.image_size;
    let pixels: Vec<f32> = (0..3 * s * s)
        .map(|i| ((i * 7919 % 211) as f32 / 105.0) - 1.0)
        .collect();
    let mut session = quantbench::runtime::session(&path, 1).unwrap();
    let input = Tensor::from_array((vec![1i64, 3, s as i64, s as i64], pixels.clone())).unwrap();
    let out = session.run(ort::inputs! {"pixel_values" => input}).unwrap();
    let (shape, got) = out["last_hidden_state"]
        .try_extract_tensor::<f32>()
        .unwrap();
    assert_eq!(**shape, [1, DIMS.tokens() as i64, DIMS.hidden as i64]);
    let want: Vec<f32> = reference(&weights, &pixels).concat();
    let max = max_diff(got, &want);
    assert!(max < 1e-4, "largest difference {max}");
    let spread = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(spread > 0.5, "outputs are not trivially small: {spread}");

    let wrong = VisionDims { hidden: 12, ..DIMS };
    let e = vision_graph(&wrong, &weights, "vision_model.")
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape"), "{e}");
}

/// The decoder head: dense, GELU, LayerNorm, then the vocabulary projection.
fn head_reference(weights: &Weights, h: &[f32]) -> Vec<f32> {
    let w = |n: &str| &weights[&format!("text_decoder.cls.predictions.{n}")];
    let x: Vec<f32> = linear(h, w("transform.dense.weight"), w("transform.dense.bias"))
        .into_iter()
        .map(gelu)
        .collect();
    let x = layer_norm_eps(
        &x,
        &w("transform.LayerNorm.weight").data,
        &w("transform.LayerNorm.bias").data,
        1e-12,
    );
    linear(
        &x,
        w("decoder.weight"),
        &weights["text_decoder.cls.predictions.bias"],
    )
}

#[test]
fn decoder_steps_with_the_cache_match_the_whole_sequence() {
    common::context().init_runtime(&mut |_| {}).unwrap();
    let mut weights = seeded(TEXT.parameters(), "text_decoder.bert.", 11);
    weights.extend(seeded(head_parameters(&TEXT), "text_decoder.cls.", 12));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text_decoder_with_past.onnx");
    let graph =
        text_decoder_graph(&TEXT, &weights, "text_decoder.bert.", "text_decoder.cls.").unwrap();
    write_model(&graph, &path).unwrap();

    let ids = [4i64, 17, 9, 22];
    let enc: Vec<Vec<f32>> = (0..3)
        .map(|i| {
            (0..TEXT.encoder_width)
                .map(|j| ((i * 17 + j * 5) % 11) as f32 / 5.0 - 1.0)
                .collect()
        })
        .collect();
    let enc_mask = [1i64, 1, 0];
    let hidden = text_reference(
        &weights,
        "text_decoder.bert.",
        true,
        (&ids, &[1; 4]),
        (&enc, &enc_mask),
    );
    let want: Vec<Vec<f32>> = hidden.iter().map(|h| head_reference(&weights, h)).collect();

    let mut session = quantbench::runtime::session(&path, 1).unwrap();
    let hd = (TEXT.hidden / TEXT.heads) as i64;
    let mut cache: Vec<ort::value::DynValue> = (0..2 * TEXT.layers)
        .map(|_| {
            Tensor::<f32>::from_array((vec![1i64, TEXT.heads as i64, 0, hd], Vec::new()))
                .unwrap()
                .into_dyn()
        })
        .collect();
    // Two tokens at once (the causal mask matters), then one at a time on the cache.
    let mut at = 0;
    for step in [&ids[0..2], &ids[2..3], &ids[3..4]] {
        let n = step.len();
        let mut inputs: Vec<(std::borrow::Cow<str>, ort::session::SessionInputValue)> = vec![
            (
                "input_ids".into(),
                Tensor::from_array((vec![1i64, n as i64], step.to_vec()))
                    .unwrap()
                    .into_dyn()
                    .into(),
            ),
            (
                "attention_mask".into(),
                Tensor::from_array((vec![1i64, (at + n) as i64], vec![1i64; at + n]))
                    .unwrap()
                    .into_dyn()
                    .into(),
            ),
            (
                "encoder_hidden_states".into(),
                Tensor::from_array((vec![1i64, 3, TEXT.encoder_width as i64], enc.concat()))
                    .unwrap()
                    .into_dyn()
                    .into(),
            ),
            (
                "encoder_attention_mask".into(),
                Tensor::from_array((vec![1i64, 3], enc_mask.to_vec()))
                    .unwrap()
                    .into_dyn()
                    .into(),
            ),
        ];
        for (i, v) in cache.iter().enumerate() {
            let name = format!("past_key_values.{}.{}", i / 2, ["key", "value"][i % 2]);
            inputs.push((name.into(), v.into()));
        }
        let mut out = session.run(inputs).unwrap();
        let (shape, logits) = out["logits"].try_extract_tensor::<f32>().unwrap();
        assert_eq!(**shape, [1, n as i64, TEXT.vocab as i64]);
        for r in 0..n {
            let row = &logits[r * TEXT.vocab..(r + 1) * TEXT.vocab];
            let max = max_diff(row, &want[at + r]);
            assert!(max < 1e-3, "token {}: largest difference {max}", at + r);
        }
        let next: Vec<ort::value::DynValue> = (0..2 * TEXT.layers)
            .map(|i| {
                out.remove(format!("present.{}.{}", i / 2, ["key", "value"][i % 2]).as_str())
                    .unwrap()
            })
            .collect();
        drop(out);
        cache = next;
        at += n;
    }
    let (shape, _) = cache[0].try_extract_tensor::<f32>().unwrap();
    assert_eq!(
        **shape,
        [1, TEXT.heads as i64, 4, hd],
        "the cache grew to every token"
    );
}

#[test]
fn a_random_blip_written_by_the_exporter_runs_in_the_pipeline() {
    use quantbench::models::blip::export::{write_folder, BlipDims};
    use quantbench::models::blip::{tokenizer, BlipConfig, BlipModel, BlipPipeline};
    common::context().init_runtime(&mut |_| {}).unwrap();
    let dims = BlipDims {
        vision: DIMS,
        text: TextDims {
            encoder_width: DIMS.hidden,
            ..TEXT
        },
    };
    let weights = random_weights(&dims.parameters(), 21);
    let words: Vec<String> = (0..dims.text.vocab - tokenizer::SPECIAL.len())
        .map(|i| format!("w{i}"))
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let config = BlipConfig {
        image_size: DIMS.image_size as u32,
        bos_token_id: 4,
        sep_token_id: 3,
        max_length: 7,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    write_folder(
        dir.path(),
        &dims,
        &weights,
        &tokenizer::wordpiece(&words).unwrap(),
        &config,
    )
    .unwrap();
    let mut p = BlipPipeline::new(BlipModel::open(dir.path(), 1).unwrap());
    let image = quantbench::data::image::load_rgb(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/datasets/images/coffee.png"
    )))
    .unwrap();
    let c = p.caption(&image).unwrap();
    assert_eq!(c.tokens[0], 4);
    assert!(c.tokens.len() <= 7 && c.tokens.iter().all(|&t| (0..30).contains(&t)));
    let a = p.answer(&image, "w1 w2 w3").unwrap();
    assert_eq!(a.tokens[0], 4);
    // Same weights, same input: the same tokens again.
    assert_eq!(p.answer(&image, "w1 w2 w3").unwrap().tokens, a.tokens);
}

#[test]
fn blip_base_shape_exports_loads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("blip-base-shape");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_quantbench"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&["export", "blip-base-shape", &out.display().to_string()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sizes: Vec<u64> = [
        "vision_model.onnx",
        "text_encoder.onnx",
        "text_decoder_with_past.onnx",
    ]
    .iter()
    .map(|f| std::fs::metadata(out.join(f)).unwrap().len())
    .collect();
    // ViT-B/16 at 384 px (86 M), BERT-base with cross-attention (137 M), the same with the LM head (161 M).
    let params: Vec<u64> = sizes.iter().map(|b| b / 4 / 1_000_000).collect();
    assert_eq!(
        params,
        vec![86, 137, 161],
        "millions of parameters per part"
    );
    let again = run(&["export", "blip-base-shape", &out.display().to_string()]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    common::context().init_runtime(&mut |_| {}).unwrap();
    let model = quantbench::models::blip::BlipModel::open(&out, 2).unwrap();
    assert_eq!(model.past_names.len(), 24);
    assert_eq!(model.empty_cache_shapes[0], vec![1, 12, 0, 64]);
    let mut p = quantbench::models::blip::BlipPipeline::new(model);
    let image = quantbench::data::image::load_rgb(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/datasets/images/rocket.jpg"
    )))
    .unwrap();
    let a = p.answer(&image, "what is this?").unwrap();
    assert!(a.tokens.len() <= 20 && a.tokens[0] == 4, "{:?}", a.tokens);
}
