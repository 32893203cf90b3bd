//! Captioning and question answering as transformers' BLIP `generate` (and the seed's OVBlipModel) do it:
//! the image through the vision graph; for a question, the question through the text encoder attending to
//! the image; then greedy decoding from [DEC] with a key/value cache, attending to the image (caption) or
//! to the encoded question (answer), until [SEP] or `max_length` tokens.

use crate::runtime::run_timed;
use std::borrow::Cow;
use std::time::{Duration, Instant};

use image::RgbImage;
use ort::session::SessionInputValue;
use ort::value::{DynValue, Tensor};

use super::model::BlipModel;
use super::preprocess::pixel_values;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{part}: {what}")]
    Run { part: &'static str, what: String },
    #[error("the question is empty")]
    EmptyQuestion,
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("observing {file}: {what}")]
    Observer { file: &'static str, what: String },
}

fn run_err(part: &'static str) -> impl Fn(ort::Error) -> GenerateError {
    move |e| GenerateError::Run {
        part,
        what: e.to_string(),
    }
}

fn missing(part: &'static str, name: &str) -> GenerateError {
    GenerateError::Run {
        part,
        what: format!("no output `{name}`"),
    }
}

/// What one caption or answer took and gave.
#[derive(Debug, Clone)]
pub struct Generated {
    pub text: String,
    /// Generated ids, [DEC] first and [SEP] last when it came.
    pub tokens: Vec<i64>,
    /// The question was longer than `max_question_tokens` and was cut.
    pub question_truncated: bool,
    pub total: Duration,
    pub in_ort: Duration,
}

pub struct BlipPipeline {
    pub model: BlipModel,
    /// Called with every graph's outputs (calibration).
    pub observer: Option<crate::models::Observer>,
}

fn ids_tensor(ids: &[i64], part: &'static str) -> Result<DynValue, GenerateError> {
    Ok(
        Tensor::from_array((vec![1i64, ids.len() as i64], ids.to_vec()))
            .map_err(run_err(part))?
            .into_dyn(),
    )
}

fn ones(n: usize, part: &'static str) -> Result<DynValue, GenerateError> {
    ids_tensor(&vec![1i64; n], part)
}

/// Sequence length of a [1, L, D] tensor.
fn seq_len(v: &DynValue, part: &'static str, name: &str) -> Result<usize, GenerateError> {
    let shape = v
        .dtype()
        .tensor_shape()
        .ok_or_else(|| missing(part, name))?;
    match **shape {
        [_, l, _] => Ok(l as usize),
        _ => Err(GenerateError::Run {
            part,
            what: format!("`{name}` is {shape:?}, expected [batch, length, hidden]"),
        }),
    }
}

fn observe(
    observer: &mut Option<crate::models::Observer>,
    file: &'static str,
    out: &ort::session::SessionOutputs,
) -> Result<(), GenerateError> {
    match observer.as_mut() {
        Some(o) => o(file, out).map_err(|what| GenerateError::Observer { file, what }),
        None => Ok(()),
    }
}

impl BlipPipeline {
    pub fn new(model: BlipModel) -> Self {
        BlipPipeline {
            model,
            observer: None,
        }
    }

    fn image_embeds(
        &mut self,
        image: &RgbImage,
        in_ort: &mut Duration,
    ) -> Result<DynValue, GenerateError> {
        const PART: &str = "vision model";
        let pixels = pixel_values(image, &self.model.config.image());
        let input = Tensor::from_array(pixels).map_err(run_err(PART))?;
        let mut out = run_timed(
            &mut self.model.vision,
            ort::inputs! {"pixel_values" => input},
            in_ort,
        )
        .map_err(run_err(PART))?;
        observe(&mut self.observer, super::model::VISION_FILE, &out)?;
        let name = self.model.config.image_embeds.clone();
        out.remove(name.as_str())
            .ok_or_else(|| missing(PART, &name))
    }

    /// Question tokens ([CLS] … [SEP]), cut to the model's limit.
    fn question_ids(&self, question: &str) -> Result<(Vec<i64>, bool), GenerateError> {
        if question.trim().is_empty() {
            return Err(GenerateError::EmptyQuestion);
        }
        let enc = self
            .model
            .tokenizer
            .encode(question, true)
            .map_err(|e| GenerateError::Tokenizer(e.to_string()))?;
        let mut ids: Vec<i64> = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        let limit = self.model.config.max_question_tokens.max(2);
        let cut = ids.len() > limit;
        if cut {
            let last = *ids.last().expect("longer than the limit");
            ids.truncate(limit - 1);
            ids.push(last);
        }
        Ok((ids, cut))
    }

    /// Greedy decoding from [DEC], attending to `context` ([1, L, D]).
    fn decode(
        &mut self,
        context: DynValue,
        in_ort: &mut Duration,
    ) -> Result<Vec<i64>, GenerateError> {
        const PART: &str = "text decoder";
        let cfg = &self.model.config;
        let (bos, sep, max_length) = (cfg.bos_token_id, cfg.sep_token_id, cfg.max_length.max(1));
        let context_len = seq_len(&context, PART, "encoder_hidden_states")?;
        let context_mask = ones(context_len, PART)?;
        let mut cache: Vec<DynValue> = self
            .model
            .empty_cache_shapes
            .iter()
            .map(|s| {
                Ok(Tensor::<f32>::from_array((s.clone(), Vec::new()))
                    .map_err(run_err(PART))?
                    .into_dyn())
            })
            .collect::<Result<_, GenerateError>>()?;
        let mut tokens = vec![bos];
        while tokens.len() < max_length {
            let last = *tokens.last().expect("starts with [DEC]");
            let mut inputs: Vec<(Cow<str>, SessionInputValue)> = vec![
                ("input_ids".into(), ids_tensor(&[last], PART)?.into()),
                ("attention_mask".into(), ones(tokens.len(), PART)?.into()),
                ("encoder_hidden_states".into(), (&context).into()),
                ("encoder_attention_mask".into(), (&context_mask).into()),
            ];
            for (name, v) in self.model.past_names.iter().zip(&cache) {
                inputs.push((Cow::Borrowed(name.as_str()), v.into()));
            }
            let mut out =
                run_timed(&mut self.model.decoder, inputs, in_ort).map_err(run_err(PART))?;
            observe(&mut self.observer, super::model::TEXT_DECODER_FILE, &out)?;
            let logits = out.get("logits").ok_or_else(|| missing(PART, "logits"))?;
            let (shape, data) = logits.try_extract_tensor::<f32>().map_err(run_err(PART))?;
            let vocab = shape.last().copied().unwrap_or(0) as usize;
            if vocab == 0 || data.len() < vocab {
                return Err(GenerateError::Run {
                    part: PART,
                    what: format!("logits of shape {shape:?}"),
                });
            }
            let row = &data[data.len() - vocab..];
            let next = row
                .iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0 as i64;
            let mut next_cache = Vec::with_capacity(cache.len());
            for name in &self.model.present_names {
                next_cache.push(
                    out.remove(name.as_str())
                        .ok_or_else(|| missing(PART, name))?,
                );
            }
            drop(out);
            cache = next_cache;
            tokens.push(next);
            if next == sep {
                break;
            }
        }
        Ok(tokens)
    }

    fn text(&self, tokens: &[i64]) -> Result<String, GenerateError> {
        let cfg = &self.model.config;
        let ids: Vec<u32> = tokens
            .iter()
            .filter(|&&t| t != cfg.bos_token_id && t != cfg.sep_token_id && t != cfg.pad_token_id)
            .filter_map(|&t| u32::try_from(t).ok())
            .collect();
        self.model
            .tokenizer
            .decode(&ids, true)
            .map_err(|e| GenerateError::Tokenizer(e.to_string()))
    }

    /// The image preprocessed and run through the vision model alone; what it took.
    pub fn vision(&mut self, image: &RgbImage) -> Result<Duration, GenerateError> {
        let start = Instant::now();
        let mut in_ort = Duration::ZERO;
        self.image_embeds(image, &mut in_ort)?;
        Ok(start.elapsed())
    }

    /// `generate_caption`: greedy decoding attending to the image.
    pub fn caption(&mut self, image: &RgbImage) -> Result<Generated, GenerateError> {
        let start = Instant::now();
        let mut in_ort = Duration::ZERO;
        let embeds = self.image_embeds(image, &mut in_ort)?;
        let tokens = self.decode(embeds, &mut in_ort)?;
        Ok(Generated {
            text: self.text(&tokens)?,
            tokens,
            question_truncated: false,
            total: start.elapsed(),
            in_ort,
        })
    }

    /// The question tokens `ids` encoded against the image embeddings.
    fn encode_question(
        &mut self,
        embeds: &DynValue,
        ids: &[i64],
        in_ort: &mut Duration,
    ) -> Result<DynValue, GenerateError> {
        const PART: &str = "text encoder";
        let image_len = seq_len(embeds, PART, "encoder_hidden_states")?;
        let image_mask = ones(image_len, PART)?;
        let inputs: Vec<(Cow<str>, SessionInputValue)> = vec![
            ("input_ids".into(), ids_tensor(ids, PART)?.into()),
            ("attention_mask".into(), ones(ids.len(), PART)?.into()),
            ("encoder_hidden_states".into(), embeds.into()),
            ("encoder_attention_mask".into(), (&image_mask).into()),
        ];
        let mut out =
            run_timed(&mut self.model.text_encoder, inputs, in_ort).map_err(run_err(PART))?;
        observe(&mut self.observer, super::model::TEXT_ENCODER_FILE, &out)?;
        out.remove("last_hidden_state")
            .ok_or_else(|| missing(PART, "last_hidden_state"))
    }

    /// What calibration runs for several questions about one image: the vision model once, the text
    /// encoder per question, and the decoder only when `decode` (a decoder that is not calibrated need
    /// not run).
    pub fn encode_questions(
        &mut self,
        image: &RgbImage,
        questions: &[&str],
        decode: bool,
    ) -> Result<(), GenerateError> {
        let mut in_ort = Duration::ZERO;
        let embeds = self.image_embeds(image, &mut in_ort)?;
        for question in questions {
            let (ids, _) = self.question_ids(question)?;
            let question_embeds = self.encode_question(&embeds, &ids, &mut in_ort)?;
            if decode {
                self.decode(question_embeds, &mut in_ort)?;
            }
        }
        Ok(())
    }

    /// `generate_answer`: the question encoded against the image, then greedy decoding attending to it.
    pub fn answer(&mut self, image: &RgbImage, question: &str) -> Result<Generated, GenerateError> {
        let start = Instant::now();
        let (ids, question_truncated) = self.question_ids(question)?;
        let mut in_ort = Duration::ZERO;
        let embeds = self.image_embeds(image, &mut in_ort)?;
        let question_embeds = self.encode_question(&embeds, &ids, &mut in_ort)?;
        drop(embeds);
        let tokens = self.decode(question_embeds, &mut in_ort)?;
        Ok(Generated {
            text: self.text(&tokens)?,
            tokens,
            question_truncated,
            total: start.elapsed(),
            in_ort,
        })
    }
}
