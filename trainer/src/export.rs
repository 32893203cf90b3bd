//! The trained burn model as quantbench's exporter takes weights: Hugging Face BLIP names and PyTorch
//! layouts (burn's Linear stores [d_in, d_out]; PyTorch's [d_out, d_in]).

use anyhow::{ensure, Result};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;
use quantbench::models::blip::export::{BlipDims, Param, Weights};

use crate::model::{Attention, Blip, Text};

fn values<const D: usize>(t: Tensor<D>) -> (Vec<usize>, Vec<f32>) {
    let dims = t.dims().to_vec();
    let data = t.into_data().convert::<f32>();
    let v = data.as_slice::<f32>().expect("f32 after convert").to_vec();
    (dims, v)
}

struct Out<'a>(&'a mut Weights);

impl Out<'_> {
    fn put(&mut self, name: String, dims: Vec<usize>, data: Vec<f32>) {
        self.0.insert(name, Param { dims, data });
    }

    fn tensor<const D: usize>(&mut self, name: String, t: Tensor<D>) {
        let (dims, data) = values(t);
        self.put(name, dims, data);
    }

    /// `{name}.weight` as [out, in] and `{name}.bias`; `shape` overrides the weight's dims (the patch
    /// convolution's [d, 3, p, p]).
    fn linear(&mut self, name: &str, l: &Linear, shape: Option<Vec<usize>>) {
        let (dims, data) = values(l.weight.val());
        let (inp, out) = (dims[0], dims[1]);
        let mut t = vec![0f32; inp * out];
        for i in 0..inp {
            for o in 0..out {
                t[o * inp + i] = data[i * out + o];
            }
        }
        self.put(format!("{name}.weight"), shape.unwrap_or(vec![out, inp]), t);
        if let Some(b) = &l.bias {
            self.tensor(format!("{name}.bias"), b.val());
        }
    }

    fn norm(&mut self, name: &str, n: &LayerNorm) {
        self.tensor(format!("{name}.weight"), n.gamma.val());
        if let Some(b) = &n.beta {
            self.tensor(format!("{name}.bias"), b.val());
        }
    }

    fn attention(&mut self, name: &str, a: &Attention) {
        self.linear(&format!("{name}.self.query"), &a.query, None);
        self.linear(&format!("{name}.self.key"), &a.key, None);
        self.linear(&format!("{name}.self.value"), &a.value, None);
        self.linear(&format!("{name}.output.dense"), &a.output, None);
        self.norm(&format!("{name}.output.LayerNorm"), &a.norm);
    }

    fn text(&mut self, p: &str, t: &Text) {
        self.tensor(
            format!("{p}embeddings.word_embeddings.weight"),
            t.word_embeddings.weight.val(),
        );
        self.tensor(
            format!("{p}embeddings.position_embeddings.weight"),
            t.position_embeddings.weight.val(),
        );
        self.norm(&format!("{p}embeddings.LayerNorm"), &t.embeddings_norm);
        for (i, l) in t.layers.iter().enumerate() {
            let n = format!("{p}encoder.layer.{i}");
            self.attention(&format!("{n}.attention"), &l.attention);
            self.attention(&format!("{n}.crossattention"), &l.crossattention);
            self.linear(&format!("{n}.intermediate.dense"), &l.intermediate, None);
            self.linear(&format!("{n}.output.dense"), &l.output, None);
            self.norm(&format!("{n}.output.LayerNorm"), &l.output_norm);
        }
    }
}

/// Every parameter under the name BlipForQuestionAnswering gives it; checked against `dims`.
pub fn weights(model: &Blip, dims: &BlipDims) -> Result<Weights> {
    let mut w = Weights::new();
    let mut out = Out(&mut w);
    let v = &model.vision;
    let (d, p) = (dims.vision.hidden, dims.vision.patch_size);
    let pre = "vision_model.";
    out.linear(
        &format!("{pre}embeddings.patch_embedding"),
        &v.patch,
        Some(vec![d, 3, p, p]),
    );
    out.tensor(
        format!("{pre}embeddings.class_embedding"),
        v.class_embedding.val(),
    );
    out.tensor(
        format!("{pre}embeddings.position_embedding"),
        v.position_embedding.val(),
    );
    for (i, l) in v.layers.iter().enumerate() {
        let n = format!("{pre}encoder.layers.{i}");
        out.norm(&format!("{n}.layer_norm1"), &l.layer_norm1);
        out.linear(&format!("{n}.self_attn.qkv"), &l.qkv, None);
        out.linear(&format!("{n}.self_attn.projection"), &l.projection, None);
        out.norm(&format!("{n}.layer_norm2"), &l.layer_norm2);
        out.linear(&format!("{n}.mlp.fc1"), &l.fc1, None);
        out.linear(&format!("{n}.mlp.fc2"), &l.fc2, None);
    }
    out.norm(&format!("{pre}post_layernorm"), &v.post_layernorm);
    out.text("text_encoder.", &model.text_encoder);
    out.text("text_decoder.bert.", &model.text_decoder);
    let h = "text_decoder.cls.predictions.";
    out.linear(&format!("{h}transform.dense"), &model.head.transform, None);
    out.norm(
        &format!("{h}transform.LayerNorm"),
        &model.head.transform_norm,
    );
    out.linear(&format!("{h}decoder"), &model.head.decoder, None);
    // BlipTextLMPredictionHead keeps the decoder's bias one level up, as `predictions.bias`.
    let bias = w
        .remove(&format!("{h}decoder.bias"))
        .expect("the head has a bias");
    w.insert(format!("{h}bias"), bias);

    let expected: Vec<(String, Vec<usize>)> = dims.parameters();
    ensure!(
        expected.len() == w.len(),
        "{} weights written, {} expected",
        w.len(),
        expected.len()
    );
    for (name, shape) in expected {
        let got = w.get(&name).map(|p| p.dims.clone());
        ensure!(
            got.as_ref() == Some(&shape),
            "{name}: {got:?}, expected {shape:?}"
        );
    }
    Ok(w)
}
