//! easy-VQA as the trainer reads it: per image, its patches (preprocessed exactly as quantbench's
//! pipeline does), its questions with their one-token answers, and its caption when the answers tell one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{ensure, Context, Result};
use burn::tensor::{Device, Int, Tensor, TensorData};
use quantbench::data::image::load_rgb;
use quantbench::data::manifest::{load_captions, load_vqa};
use quantbench::models::blip::preprocess::{pixel_values, ImageConfig};
use tokenizers::Tokenizer;

pub const PAD: i64 = 0;
pub const SEP: i64 = 3;
pub const DEC: i64 = 4;

pub struct Image {
    /// [patches, 3·p·p], rows in the order the patch convolution flattens its output.
    pub patches: Vec<f32>,
    /// Question ids ([CLS] … [SEP]) and the answer's one token.
    pub questions: Vec<(Vec<i64>, i64)>,
    pub caption: Option<Vec<i64>>,
}

/// Words as BERT's pre-tokenizer splits lower-cased text: runs of letters and digits, and each
/// punctuation mark alone.
pub fn words(text: &str, into: &mut BTreeSet<String>) {
    let mut word = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            into.insert(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            into.insert(c.to_string());
        }
    }
    if !word.is_empty() {
        into.insert(word);
    }
}

/// The vocabulary of a split's questions, answers and captions, sorted.
pub fn vocabulary(split: &Path) -> Result<Vec<String>> {
    let mut all = BTreeSet::new();
    for q in load_vqa(&split.join("vqa.jsonl"))? {
        words(&q.question, &mut all);
        for a in &q.answers {
            words(a, &mut all);
        }
    }
    for c in load_captions(&split.join("captions.jsonl"))? {
        for t in &c.captions {
            words(t, &mut all);
        }
    }
    Ok(all.into_iter().collect())
}

fn ids(tok: &Tokenizer, text: &str, special: bool) -> Result<Vec<i64>> {
    let enc = tok
        .encode(text, special)
        .map_err(|e| anyhow::anyhow!("tokenizing {text:?}: {e}"))?;
    Ok(enc.get_ids().iter().map(|&i| i64::from(i)).collect())
}

fn patches(pixels: &ndarray::Array4<f32>, p: usize) -> Vec<f32> {
    let s = pixels.shape()[2];
    let n = s / p;
    let mut out = Vec::with_capacity(n * n * 3 * p * p);
    for py in 0..n {
        for px in 0..n {
            for c in 0..3 {
                for ky in 0..p {
                    for kx in 0..p {
                        out.push(pixels[[0, c, py * p + ky, px * p + kx]]);
                    }
                }
            }
        }
    }
    out
}

/// Every image of a split folder (written by quantbench's easy-VQA preparation).
pub fn load(
    split: &Path,
    tok: &Tokenizer,
    image: &ImageConfig,
    patch: usize,
) -> Result<Vec<Image>> {
    let mut by_image: BTreeMap<String, Image> = BTreeMap::new();
    for q in load_vqa(&split.join("vqa.jsonl"))? {
        let entry = match by_image.get_mut(&q.image_rel) {
            Some(e) => e,
            None => {
                let rgb = load_rgb(&q.image)?;
                let pv = pixel_values(&rgb, image);
                by_image.entry(q.image_rel.clone()).or_insert(Image {
                    patches: patches(&pv, patch),
                    questions: Vec::new(),
                    caption: None,
                })
            }
        };
        let answer = ids(tok, &q.answers[0], false)?;
        ensure!(
            answer.len() == 1,
            "answer {:?} is not one token",
            q.answers[0]
        );
        entry
            .questions
            .push((ids(tok, &q.question, true)?, answer[0]));
    }
    for c in load_captions(&split.join("captions.jsonl"))? {
        let img = by_image
            .get_mut(&c.image_rel)
            .with_context(|| format!("caption for an image without questions: {}", c.image_rel))?;
        img.caption = Some(ids(tok, &c.captions[0], false)?);
    }
    Ok(by_image.into_values().collect())
}

/// One batch of images with all their questions and captions, as tensors.
pub struct Batch {
    pub patches: Tensor<3>,
    pub question_ids: Tensor<2, Int>,
    pub question_mask: Tensor<2>,
    /// For each question, the row of its image in `patches`.
    pub question_image: Tensor<1, Int>,
    /// [DEC] answer → answer [SEP].
    pub answer_in: Tensor<2, Int>,
    pub answer_target: Vec<i64>,
    pub caption_image: Option<Tensor<1, Int>>,
    pub caption_in: Option<Tensor<2, Int>>,
    pub caption_mask: Option<Tensor<2>>,
    pub caption_target: Vec<i64>,
    pub questions: usize,
}

fn int2(v: Vec<i64>, rows: usize, cols: usize, device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

fn float2(v: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

fn int1(v: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// `patch_dim` is 3·p·p.
pub fn batch(images: &[&Image], patch_dim: usize, device: &Device) -> Batch {
    let per_image = images[0].patches.len();
    let mut patches = Vec::with_capacity(images.len() * per_image);
    for img in images {
        patches.extend_from_slice(&img.patches);
    }
    let qs: Vec<(usize, &(Vec<i64>, i64))> = images
        .iter()
        .enumerate()
        .flat_map(|(i, img)| img.questions.iter().map(move |q| (i, q)))
        .collect();
    let len = qs.iter().map(|(_, (ids, _))| ids.len()).max().unwrap_or(1);
    let (mut ids, mut mask, mut image, mut ans_in, mut target) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, (q, a)) in &qs {
        for j in 0..len {
            ids.push(q.get(j).copied().unwrap_or(PAD));
            mask.push(if j < q.len() { 1.0 } else { 0.0 });
        }
        image.push(*i as i64);
        ans_in.extend([DEC, *a]);
        target.extend([*a, SEP]);
    }
    let caps: Vec<(usize, &Vec<i64>)> = images
        .iter()
        .enumerate()
        .filter_map(|(i, img)| img.caption.as_ref().map(|c| (i, c)))
        .collect();
    let cap_len = caps.iter().map(|(_, c)| c.len() + 1).max().unwrap_or(0);
    let (mut c_img, mut c_in, mut c_mask, mut c_target) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, c) in &caps {
        c_img.push(*i as i64);
        for j in 0..cap_len {
            c_in.push(if j == 0 {
                DEC
            } else {
                c.get(j - 1).copied().unwrap_or(PAD)
            });
            c_mask.push(if j <= c.len() { 1.0 } else { 0.0 });
            c_target.push(match j.cmp(&c.len()) {
                std::cmp::Ordering::Less => c[j],
                std::cmp::Ordering::Equal => SEP,
                std::cmp::Ordering::Greater => -1,
            });
        }
    }
    let n = qs.len();
    let nc = caps.len();
    let tokens = per_image / patch_dim;
    Batch {
        patches: Tensor::<1>::from_data(
            TensorData::new(patches, [images.len() * per_image]),
            device,
        )
        .reshape([images.len(), tokens, patch_dim]),
        question_ids: int2(ids, n, len, device),
        question_mask: float2(mask, n, len, device),
        question_image: int1(image, device),
        answer_in: int2(ans_in, n, 2, device),
        answer_target: target,
        caption_image: (nc > 0).then(|| int1(c_img, device)),
        caption_in: (nc > 0).then(|| int2(c_in, nc, cap_len, device)),
        caption_mask: (nc > 0).then(|| float2(c_mask, nc, cap_len, device)),
        caption_target: c_target,
        questions: n,
    }
}
