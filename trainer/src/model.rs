//! BLIP in burn, with the same computations as quantbench's exported graphs: a pre-norm ViT (fused qkv,
//! LayerNorm ε 1e-5, exact GELU), and BERT-style text models (post-norm, ε 1e-12) with cross-attention,
//! the decoder with a causal mask and the MLM-style head.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor};
use quantbench::models::blip::export::{TextDims, VisionDims};

const TEXT_EPS: f64 = 1e-12;
/// BERT's additive mask value, as the exported graphs use it.
pub const MASKED: f32 = -10_000.0;

fn dense(d_in: usize, d_out: usize, device: &Device) -> Linear {
    // burn's (and PyTorch's) default, uniform ±1/√d_in: BERT's normal(0, 0.02) is sized for width 768 and,
    // at this width, left the vision model stuck on colours (answers plateaued at 79 %).
    LinearConfig::new(d_in, d_out).init(device)
}

fn norm(d: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(eps).init(device)
}

/// Scaled dot-product attention over `heads` heads; `mask` is additive and broadcast to [b, h, tq, tk].
pub fn attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    mask: Option<Tensor<4>>,
    heads: usize,
) -> Tensor<3> {
    let [b, tq, d] = q.dims();
    let tk = k.dims()[1];
    let hd = d / heads;
    let split = |x: Tensor<3>, t: usize| x.reshape([b, t, heads, hd]).swap_dims(1, 2);
    let (q, k, v) = (split(q, tq), split(k, tk), split(v, tk));
    let mut scores = q
        .matmul(k.swap_dims(2, 3))
        .mul_scalar(1.0 / (hd as f32).sqrt());
    if let Some(m) = mask {
        scores = scores + m;
    }
    softmax(scores, 3)
        .matmul(v)
        .swap_dims(1, 2)
        .reshape([b, tq, d])
}

#[derive(Module, Debug)]
pub struct VisionLayer {
    pub layer_norm1: LayerNorm,
    pub qkv: Linear,
    pub projection: Linear,
    pub layer_norm2: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
}

#[derive(Module, Debug)]
pub struct Vision {
    /// The patch convolution as a Linear over flattened (channel, row, column) patches.
    pub patch: Linear,
    pub class_embedding: Param<Tensor<3>>,
    pub position_embedding: Param<Tensor<3>>,
    pub layers: Vec<VisionLayer>,
    pub post_layernorm: LayerNorm,
}

impl Vision {
    pub fn new(dims: &VisionDims, device: &Device) -> Self {
        let (d, m) = (dims.hidden, dims.intermediate);
        let normal = |shape: [usize; 3]| {
            Param::from_tensor(Tensor::random(
                shape,
                burn::tensor::Distribution::Normal(0.0, 0.02),
                device,
            ))
        };
        Vision {
            patch: dense(3 * dims.patch_size * dims.patch_size, d, device),
            class_embedding: normal([1, 1, d]),
            position_embedding: normal([1, dims.tokens(), d]),
            layers: (0..dims.layers)
                .map(|_| VisionLayer {
                    layer_norm1: norm(d, 1e-5, device),
                    qkv: dense(d, 3 * d, device),
                    projection: dense(d, d, device),
                    layer_norm2: norm(d, 1e-5, device),
                    fc1: dense(d, m, device),
                    fc2: dense(m, d, device),
                })
                .collect(),
            post_layernorm: norm(d, 1e-5, device),
        }
    }

    /// `patches` [b, n, 3·p·p] → image embeddings [b, n + 1, d].
    pub fn forward(&self, patches: Tensor<3>, heads: usize) -> Tensor<3> {
        let b = patches.dims()[0];
        let x = self.patch.forward(patches);
        let d = x.dims()[2];
        let cls = self.class_embedding.val().expand([b, 1, d]);
        let mut h = Tensor::cat(vec![cls, x], 1) + self.position_embedding.val();
        for l in &self.layers {
            let a = l.layer_norm1.forward(h.clone());
            let qkv = l.qkv.forward(a);
            let q = qkv.clone().narrow(2, 0, d);
            let k = qkv.clone().narrow(2, d, d);
            let v = qkv.narrow(2, 2 * d, d);
            h = h + l.projection.forward(attention(q, k, v, None, heads));
            let a = l.layer_norm2.forward(h.clone());
            h = h + l.fc2.forward(gelu(l.fc1.forward(a)));
        }
        self.post_layernorm.forward(h)
    }
}

#[derive(Module, Debug)]
pub struct Attention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub norm: LayerNorm,
}

impl Attention {
    fn new(d: usize, kv_width: usize, device: &Device) -> Self {
        Attention {
            query: dense(d, d, device),
            key: dense(kv_width, d, device),
            value: dense(kv_width, d, device),
            output: dense(d, d, device),
            norm: norm(d, TEXT_EPS, device),
        }
    }

    /// LayerNorm(h + attention(h → source)).
    fn forward(
        &self,
        h: Tensor<3>,
        source: Tensor<3>,
        mask: Option<Tensor<4>>,
        heads: usize,
    ) -> Tensor<3> {
        let ctx = attention(
            self.query.forward(h.clone()),
            self.key.forward(source.clone()),
            self.value.forward(source),
            mask,
            heads,
        );
        self.norm.forward(self.output.forward(ctx) + h)
    }
}

#[derive(Module, Debug)]
pub struct TextLayer {
    pub attention: Attention,
    pub crossattention: Attention,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct Text {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub embeddings_norm: LayerNorm,
    pub layers: Vec<TextLayer>,
}

/// What a text model attends to: additive masks already shaped to broadcast over heads.
pub struct TextInputs {
    pub ids: Tensor<2, Int>,
    pub self_mask: Tensor<4>,
    pub encoder_states: Tensor<3>,
    pub encoder_mask: Option<Tensor<4>>,
}

impl Text {
    pub fn new(dims: &TextDims, device: &Device) -> Self {
        let (d, m) = (dims.hidden, dims.intermediate);
        let embedding = |n: usize| {
            EmbeddingConfig::new(n, d)
                .with_initializer(burn::nn::Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device)
        };
        Text {
            word_embeddings: embedding(dims.vocab),
            position_embeddings: embedding(dims.max_positions),
            embeddings_norm: norm(d, TEXT_EPS, device),
            layers: (0..dims.layers)
                .map(|_| TextLayer {
                    attention: Attention::new(d, d, device),
                    crossattention: Attention::new(d, dims.encoder_width, device),
                    intermediate: dense(d, m, device),
                    output: dense(m, d, device),
                    output_norm: norm(d, TEXT_EPS, device),
                })
                .collect(),
        }
    }

    pub fn forward(&self, input: TextInputs, heads: usize) -> Tensor<3> {
        let [b, t] = input.ids.dims();
        let d = self.embeddings_norm.gamma.dims()[0];
        let positions = self
            .position_embeddings
            .weight
            .val()
            .narrow(0, 0, t)
            .reshape([1, t, d])
            .expand([b, t, d]);
        let mut h = self
            .embeddings_norm
            .forward(self.word_embeddings.forward(input.ids) + positions);
        for l in &self.layers {
            h = l
                .attention
                .forward(h.clone(), h, Some(input.self_mask.clone()), heads);
            h = l.crossattention.forward(
                h,
                input.encoder_states.clone(),
                input.encoder_mask.clone(),
                heads,
            );
            let up = gelu(l.intermediate.forward(h.clone()));
            h = l.output_norm.forward(l.output.forward(up) + h);
        }
        h
    }
}

/// BlipTextOnlyMLMHead: dense, GELU, LayerNorm, then the vocabulary projection with its bias.
#[derive(Module, Debug)]
pub struct Head {
    pub transform: Linear,
    pub transform_norm: LayerNorm,
    pub decoder: Linear,
}

impl Head {
    fn new(dims: &TextDims, device: &Device) -> Self {
        Head {
            transform: dense(dims.hidden, dims.hidden, device),
            transform_norm: norm(dims.hidden, TEXT_EPS, device),
            decoder: dense(dims.hidden, dims.vocab, device),
        }
    }

    pub fn forward(&self, h: Tensor<3>) -> Tensor<3> {
        self.decoder
            .forward(self.transform_norm.forward(gelu(self.transform.forward(h))))
    }
}

#[derive(Module, Debug)]
pub struct Blip {
    pub vision: Vision,
    pub text_encoder: Text,
    pub text_decoder: Text,
    pub head: Head,
}

impl Blip {
    pub fn new(vision: &VisionDims, text: &TextDims, device: &Device) -> Self {
        Blip {
            vision: Vision::new(vision, device),
            text_encoder: Text::new(text, device),
            text_decoder: Text::new(text, device),
            head: Head::new(text, device),
        }
    }
}

/// [b, t] of 0/1 → additive [b, 1, 1, t].
pub fn padding_mask(mask: Tensor<2>) -> Tensor<4> {
    let [b, t] = mask.dims();
    (mask.neg() + 1.0).mul_scalar(MASKED).reshape([b, 1, 1, t])
}

/// Additive causal mask [1, 1, t, t].
pub fn causal_mask(t: usize, device: &Device) -> Tensor<4> {
    let data: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { MASKED } else { 0.0 }))
        .collect();
    Tensor::<1>::from_data(burn::tensor::TensorData::new(data, [t * t]), device)
        .reshape([1, 1, t, t])
}
