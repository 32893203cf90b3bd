//! The training run: data, schedule, loss, a quick held-out check each epoch, and the export.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use quantbench::assets::Cache;
use quantbench::data::easy_vqa::{self, Split};
use quantbench::models::blip::export::{write_folder, BlipDims, TextDims, VisionDims};
use quantbench::models::blip::{tokenizer, BlipConfig};

use crate::data::{self, Batch, Image, DEC};
use crate::model::{causal_mask, padding_mask, Blip, TextInputs};
use crate::Options;

const IMAGE_SIZE: usize = 64;
const PATCH: usize = 8;
const HEADS: usize = 4;
const MAX_POSITIONS: usize = 32;
/// How much the caption loss counts next to the answers' (there are ten questions per caption).
const CAPTION_WEIGHT: f32 = 0.5;

/// Mean cross-entropy over the targets that are not −1.
fn cross_entropy(logits: Tensor<3>, targets: &[i64]) -> Tensor<1> {
    let [n, t, v] = logits.dims();
    let device = logits.device();
    let logp = log_softmax(logits.reshape([n * t, v]), 1);
    let idx: Vec<i64> = targets.iter().map(|&x| x.max(0)).collect();
    let keep: Vec<f32> = targets
        .iter()
        .map(|&x| if x >= 0 { 1.0 } else { 0.0 })
        .collect();
    let count = keep.iter().sum::<f32>().max(1.0);
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [n * t, 1]), &device);
    let keep = Tensor::<2>::from_data(TensorData::new(keep, [n * t, 1]), &device);
    (logp.gather(1, idx) * keep).sum().neg().div_scalar(count)
}

fn decoder_mask(mask: Tensor<2>) -> Tensor<4> {
    let [n, t] = mask.dims();
    let device = mask.device();
    padding_mask(mask).expand([n, 1, t, t]) + causal_mask(t, &device).expand([n, 1, t, t])
}

/// Answer logits [questions, 2, vocab] and caption logits, from one batch.
fn forward(model: &Blip, b: &Batch) -> (Tensor<3>, Option<Tensor<3>>) {
    let image = model.vision.forward(b.patches.clone(), HEADS);
    let q_mask = padding_mask(b.question_mask.clone());
    let question = model.text_encoder.forward(
        TextInputs {
            ids: b.question_ids.clone(),
            self_mask: q_mask.clone(),
            encoder_states: image.clone().select(0, b.question_image.clone()),
            encoder_mask: None,
        },
        HEADS,
    );
    let n = b.questions;
    let device = image.device();
    let ones = Tensor::<2>::ones([n, 2], &device);
    let answer = model.text_decoder.forward(
        TextInputs {
            ids: b.answer_in.clone(),
            self_mask: decoder_mask(ones),
            encoder_states: question,
            encoder_mask: Some(q_mask),
        },
        HEADS,
    );
    let answer = model.head.forward(answer);
    let caption = match (&b.caption_image, &b.caption_in, &b.caption_mask) {
        (Some(img), Some(ids), Some(mask)) => {
            let h = model.text_decoder.forward(
                TextInputs {
                    ids: ids.clone(),
                    self_mask: decoder_mask(mask.clone()),
                    encoder_states: image.select(0, img.clone()),
                    encoder_mask: None,
                },
                HEADS,
            );
            Some(model.head.forward(h))
        }
        _ => None,
    };
    (answer, caption)
}

fn loss(model: &Blip, b: &Batch) -> Tensor<1> {
    let (answer, caption) = forward(model, b);
    let mut l = cross_entropy(answer, &b.answer_target);
    if let Some(c) = caption {
        l = l + cross_entropy(c, &b.caption_target).mul_scalar(CAPTION_WEIGHT);
    }
    l
}

/// Teacher-forced check on held-out images: the answer's token right, every caption token right.
fn check(model: &Blip, images: &[Image], device: &Device) -> (f64, f64) {
    let (mut right, mut asked, mut captions_right, mut captions) = (0, 0, 0, 0);
    for chunk in images.chunks(32) {
        let refs: Vec<&Image> = chunk.iter().collect();
        let b = data::batch(&refs, 3 * PATCH * PATCH, device);
        let (answer, caption) = forward(model, &b);
        let [n, _, v] = answer.dims();
        let first = answer.narrow(1, 0, 1).reshape([n, v]).argmax(1);
        let first = first.into_data().convert::<i64>();
        let first = first.as_slice::<i64>().expect("i64");
        for (i, &p) in first.iter().enumerate() {
            right += usize::from(p == b.answer_target[2 * i]);
            asked += 1;
        }
        if let Some(c) = caption {
            let [n, t, v] = c.dims();
            let pred = c.reshape([n * t, v]).argmax(1).into_data().convert::<i64>();
            let pred = pred.as_slice::<i64>().expect("i64");
            for i in 0..n {
                let row = i * t..(i + 1) * t;
                let ok = row.clone().all(|j| {
                    let want = b.caption_target[j];
                    want < 0 || pred[j] == want
                });
                captions_right += usize::from(ok);
                captions += 1;
            }
        }
    }
    (
        right as f64 / asked.max(1) as f64,
        captions_right as f64 / captions.max(1) as f64,
    )
}

/// A seeded xorshift for the shuffles (burn's own generator is seeded for the initialisation).
struct Shuffle(u64);

impl Shuffle {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn permute<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

struct Log {
    lines: Vec<String>,
    start: Instant,
}

impl Log {
    fn say(&mut self, line: String) {
        let line = format!("[{:7.1}s] {line}", self.start.elapsed().as_secs_f64());
        println!("{line}");
        let _ = std::io::stdout().flush();
        self.lines.push(line);
    }
}

pub fn run(o: &Options) -> Result<()> {
    let mut log = Log {
        lines: Vec::new(),
        start: Instant::now(),
    };
    log.say(format!("train-blip {o:?}"));
    let cache = Cache::new(None, None);
    let mut say = |m: &str| eprintln!("{m}");
    let train_split = easy_vqa::prepare(&cache, Split::Train, &mut say)?;
    let test_split = easy_vqa::prepare(&cache, Split::Test, &mut say)?;
    let words = data::vocabulary(&train_split.dir)?;
    let word_refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let tok = tokenizer::wordpiece(&word_refs).map_err(anyhow::Error::msg)?;
    let d = o.hidden;
    let dims = BlipDims {
        vision: VisionDims {
            image_size: IMAGE_SIZE,
            patch_size: PATCH,
            hidden: d,
            layers: o.vision_layers,
            heads: HEADS,
            intermediate: 4 * d,
        },
        text: TextDims {
            hidden: d,
            layers: o.text_layers,
            heads: HEADS,
            intermediate: 4 * d,
            vocab: tokenizer::SPECIAL.len() + words.len(),
            max_positions: MAX_POSITIONS,
            encoder_width: d,
        },
    };
    let config = BlipConfig {
        image_size: IMAGE_SIZE as u32,
        bos_token_id: DEC,
        sep_token_id: data::SEP,
        pad_token_id: data::PAD,
        max_length: 20,
        max_question_tokens: MAX_POSITIONS,
        ..Default::default()
    };
    let image = config.image();
    let train = data::load(&train_split.dir, &tok, &image, PATCH)?;
    let test = data::load(&test_split.dir, &tok, &image, PATCH)?;
    let questions: usize = train.iter().map(|i| i.questions.len()).sum();
    log.say(format!(
        "easy-VQA train: {} images, {questions} questions, {} captions; vocabulary {} words; {} parameters",
        train.len(),
        train.iter().filter(|i| i.caption.is_some()).count(),
        words.len(),
        dims.parameters().iter().map(|(_, s)| s.iter().product::<usize>()).sum::<usize>()
    ));

    let device = Device::flex().autodiff();
    device.seed(o.seed);
    let mut model = Blip::new(&dims.vision, &dims.text, &device);
    let mut optim = AdamWConfig::new().with_weight_decay(0.01).init();
    let per_epoch = train.len().div_ceil(o.images_per_batch);
    let total = if o.max_steps > 0 {
        o.max_steps.min(o.epochs * per_epoch)
    } else {
        o.epochs * per_epoch
    };
    let warmup = (total / 20).max(1);
    let lr_at = |step: usize| {
        if step < warmup {
            o.learning_rate * (step + 1) as f64 / warmup as f64
        } else {
            let t = (step - warmup) as f64 / (total - warmup).max(1) as f64;
            o.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        }
    };
    let mut shuffle = Shuffle(o.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let held_out = &test[..test.len().min(300)];
    let eval_device = device.clone().inner();
    let mut step = 0;
    'epochs: for epoch in 1..=o.epochs {
        shuffle.permute(&mut order);
        let (mut sum, mut seen, mut since) = (0f64, 0usize, Instant::now());
        for chunk in order.chunks(o.images_per_batch) {
            let images: Vec<&Image> = chunk.iter().map(|&i| &train[i]).collect();
            let b = data::batch(&images, 3 * PATCH * PATCH, &device);
            let l = loss(&model, &b);
            let value = l.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(lr_at(step), model, grads);
            sum += f64::from(value);
            seen += b.questions;
            step += 1;
            if step % 50 == 0 {
                log.say(format!(
                    "epoch {epoch} step {step}/{total} loss {:.4} lr {:.2e} {:.0} questions/s",
                    sum / 50.0,
                    lr_at(step),
                    seen as f64 / since.elapsed().as_secs_f64()
                ));
                (sum, seen, since) = (0.0, 0, Instant::now());
            }
            if step >= total {
                break 'epochs;
            }
        }
        let (vqa, captions) = check(&model.valid(), held_out, &eval_device);
        log.say(format!(
            "epoch {epoch}: held-out (first {} test images) answer accuracy {:.2} %, caption exact {:.2} %",
            held_out.len(),
            100.0 * vqa,
            100.0 * captions
        ));
    }
    let (vqa, captions) = check(&model.valid(), &test, &eval_device);
    log.say(format!(
        "final, whole test split ({} images, teacher-forced): answer accuracy {:.2} %, caption exact {:.2} %",
        test.len(),
        100.0 * vqa,
        100.0 * captions
    ));
    let weights = crate::export::weights(&model.valid(), &dims)?;
    write(&o.out, &dims, &weights, &tok, &config, &log.lines)?;
    log.say(format!("wrote {}", o.out.display()));
    Ok(())
}

/// The model folder through a temp folder beside it, replacing an older one only once complete.
fn write(
    out: &Path,
    dims: &BlipDims,
    weights: &quantbench::models::blip::export::Weights,
    tok: &tokenizers::Tokenizer,
    config: &BlipConfig,
    log: &[String],
) -> Result<()> {
    quantbench::fsutil::write_dir_atomic(out, |tmp| {
        write_folder(tmp, dims, weights, tok, config)?;
        std::fs::write(tmp.join("training-log.txt"), log.join("\n") + "\n")?;
        Ok(())
    })
}
