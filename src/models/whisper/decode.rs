//! Greedy decoding with the KV cache, window by window over audio longer than 30 s.

use crate::runtime::run_timed;
use std::borrow::Cow;
use std::time::{Duration, Instant};

use ort::session::SessionInputValue;
use ort::value::{DynValue, Tensor};

use super::features::{LogMel, MelExtractor, HOP, WINDOW_FRAMES};
use super::model::WhisperModel;
use super::tokens::Task;

/// Samples in one 30 s window.
const WINDOW_SAMPLES: usize = WINDOW_FRAMES * HOP;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{part}: ONNX Runtime failed: {what}")]
    Ort { part: &'static str, what: String },
    #[error("{part}: output `{name}` missing or of the wrong type")]
    Output { part: &'static str, name: String },
    #[error("{file}: {what}")]
    Observer { file: String, what: String },
}

/// Sees every graph call's outputs (with the graph's file name): how calibration reads the activations an
/// instrumented model exposes while it transcribes.
pub use crate::models::Observer;

fn ort_err(part: &'static str) -> impl Fn(ort::Error) -> DecodeError {
    move |e| DecodeError::Ort {
        part,
        what: e.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Cap on generated tokens per 30 s window.
    pub max_new_tokens: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_new_tokens: 224,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Transcription {
    pub text: String,
    pub tokens: Vec<i64>,
    pub windows: usize,
    /// Set when a window was cut short by the repetition guard.
    pub repetition_stopped: bool,
    pub total: Duration,
    /// Time spent inside ONNX Runtime calls (the rest is features, decoding loop, tokenizer).
    pub in_ort: Duration,
}

/// The first decoder run over a prompt: its last logits row, the row asked for beside it, and the caches.
pub(super) struct FirstStep {
    pub(super) logits: Vec<f32>,
    pub(super) row: Option<Vec<f32>>,
    pub(super) state: StepState,
}

/// Decoder state between steps: the encoder output, the cross-attention cache (when the step graph takes
/// one) and the self-attention cache.
pub struct StepState {
    pub(super) enc: DynValue,
    cross: Vec<DynValue>,
    self_kv: Vec<DynValue>,
    pub cache_len: usize,
}

pub struct Pipeline {
    pub model: WhisperModel,
    mel: MelExtractor,
    pub options: DecodeOptions,
    suppress: Vec<bool>,
    suppress_begin: Vec<bool>,
    /// `suppress` with the timestamp tokens allowed (long-form decoding's timestamp rules govern them).
    pub(super) suppress_text: Vec<bool>,
    /// The token ids `begin_suppress_tokens` names (blank and end-of-text), barred at a window's first step.
    pub(super) begin_suppressed: Vec<i64>,
    past_self_names: Vec<String>,
    past_cross_names: Vec<String>,
    present_self_names: Vec<String>,
    present_cross_names: Vec<String>,
    /// What each window's decoding starts from: language and task (English transcription by default).
    prompt: Vec<i64>,
    /// `prompt` without `<|notimestamps|>`: long-form decoding's start of each window.
    pub(super) sot_sequence: Vec<i64>,
    pub observer: Option<Observer>,
}

/// A language's probability from [`Pipeline::detect_language`].
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageProbability {
    pub code: String,
    pub probability: f32,
}

impl Pipeline {
    pub fn new(model: WhisperModel, options: DecodeOptions) -> Self {
        let vocab = model
            .config
            .vocab_size
            .max(model.tokenizer.get_vocab_size(true));
        let mut suppress = vec![false; vocab];
        let t = &model.tokens;
        for &id in model
            .config
            .suppress_tokens
            .iter()
            .chain(&t.always_suppressed)
        {
            if let Some(s) = suppress.get_mut(id as usize) {
                *s = true;
            }
        }
        let suppress_text = suppress.clone();
        // No timestamps are asked for: every timestamp token (after <|notimestamps|>) stays out.
        for s in suppress.iter_mut().skip(t.no_timestamps as usize) {
            *s = true;
        }
        let mut suppress_begin = suppress.clone();
        for &id in &model.config.begin_suppress_tokens {
            if let Some(s) = suppress_begin.get_mut(id as usize) {
                *s = true;
            }
        }
        let n = model.n_layers;
        let names = |f: &dyn Fn(usize, &str) -> String| -> Vec<String> {
            (0..n)
                .flat_map(|l| ["key", "value"].map(|kv| f(l, kv)))
                .collect()
        };
        Pipeline {
            mel: MelExtractor::new(model.config.n_mels),
            past_self_names: names(&|l, kv| format!("past_key_values.{l}.decoder.{kv}")),
            past_cross_names: names(&|l, kv| format!("past_key_values.{l}.encoder.{kv}")),
            present_self_names: names(&|l, kv| format!("present.{l}.decoder.{kv}")),
            present_cross_names: names(&|l, kv| format!("present.{l}.encoder.{kv}")),
            prompt: model.tokens.prompt(),
            sot_sequence: model
                .tokens
                .sot_sequence("en", Task::Transcribe)
                .unwrap_or_default(),
            begin_suppressed: model.config.begin_suppress_tokens.clone(),
            model,
            options,
            suppress,
            suppress_begin,
            suppress_text,
            observer: None,
        }
    }

    /// Decodes `language` (a code such as `de`) with `task` from now on; refused when the model cannot
    /// (an English-only model translating, or a language it does not know).
    pub fn set_language(&mut self, language: &str, task: Task) -> Result<(), String> {
        self.prompt = self.model.tokens.prompt_for(language, task)?;
        self.sot_sequence = self.model.tokens.sot_sequence(language, task)?;
        Ok(())
    }

    /// Whisper's language identification on the first 30 s: one decoder step on `<|startoftranscript|>`,
    /// its logits softmaxed over the language tokens alone (as openai-whisper and CTranslate2 do). Every
    /// language, most probable first; empty for an English-only model.
    pub fn detect_language(
        &mut self,
        samples: &[f32],
    ) -> Result<Vec<LanguageProbability>, DecodeError> {
        if self.model.tokens.languages.is_empty() {
            return Ok(Vec::new());
        }
        let first = &samples[..samples.len().min(WINDOW_SAMPLES)];
        let mel = self.mel.compute(first);
        let window = mel.window(0);
        let mut in_ort = Duration::ZERO;
        let enc = self.encode(&window, &mut in_ort)?;
        let sot = [self.model.tokens.sot];
        let logits = self.first_step(enc, &sot, None, &mut in_ort)?.logits;
        let langs = &self.model.tokens.languages;
        let scores: Vec<f32> = langs
            .iter()
            .map(|&(_, id)| {
                logits
                    .get(id as usize)
                    .copied()
                    .unwrap_or(f32::NEG_INFINITY)
            })
            .collect();
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f64> = scores.iter().map(|&v| f64::from(v - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        let mut probs: Vec<LanguageProbability> = langs
            .iter()
            .zip(exp)
            .map(|((code, _), e)| LanguageProbability {
                code: code.clone(),
                probability: (e / sum) as f32,
            })
            .collect();
        probs.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        Ok(probs)
    }

    fn observe(
        observer: &mut Option<Observer>,
        file: &str,
        out: &ort::session::SessionOutputs,
    ) -> Result<(), DecodeError> {
        match observer.as_mut() {
            Some(o) => o(file, out).map_err(|what| DecodeError::Observer {
                file: file.to_string(),
                what,
            }),
            None => Ok(()),
        }
    }

    pub fn features(&self, samples: &[f32]) -> LogMel {
        self.mel.compute(samples)
    }

    /// Transcribes 16 kHz mono samples, window by window (faster-whisper's seek without timestamps).
    pub fn transcribe(&mut self, samples: &[f32]) -> Result<Transcription, DecodeError> {
        let start = Instant::now();
        let mut in_ort = Duration::ZERO;
        let mel = self.mel.compute(samples);
        let mut tokens = Vec::new();
        let mut texts = Vec::new();
        let mut repetition_stopped = false;
        let starts = mel.window_starts();
        for &s in &starts {
            let window = mel.window(s);
            let enc = self.encode(&window, &mut in_ort)?;
            let (ids, rep) = self.greedy(enc, &mut in_ort)?;
            repetition_stopped |= rep;
            let text = self.decode_text(&ids);
            if !text.is_empty() {
                texts.push(text);
            }
            tokens.extend(ids);
        }
        Ok(Transcription {
            text: texts.join(" "),
            tokens,
            windows: starts.len(),
            repetition_stopped,
            total: start.elapsed(),
            in_ort,
        })
    }

    pub fn decode_text(&self, ids: &[i64]) -> String {
        self.raw_text(ids).trim().to_string()
    }

    /// The text of `ids` as decoded: special and timestamp tokens left out, a leading space kept.
    pub(super) fn raw_text(&self, ids: &[i64]) -> String {
        let plain: Vec<u32> = ids
            .iter()
            .filter(|&&i| i < self.model.tokens.eot)
            .map(|&i| i as u32)
            .collect();
        self.model
            .tokenizer
            .decode(&plain, true)
            .unwrap_or_default()
    }

    /// One encoder call on a [n_mels, 3000] window.
    pub fn encode(
        &mut self,
        window: &[f32],
        in_ort: &mut Duration,
    ) -> Result<DynValue, DecodeError> {
        let n_mels = self.mel.n_mels();
        let input = Tensor::from_array((
            vec![1i64, n_mels as i64, WINDOW_FRAMES as i64],
            window.to_vec(),
        ))
        .map_err(ort_err("encoder"))?;
        let mut out = run_timed(
            &mut self.model.encoder,
            ort::inputs! {"input_features" => input},
            in_ort,
        )
        .map_err(ort_err("encoder"))?;
        Self::observe(&mut self.observer, super::model::ENCODER_FILE, &out)?;
        out.remove("last_hidden_state").ok_or(DecodeError::Output {
            part: "encoder",
            name: "last_hidden_state".into(),
        })
    }

    /// A cache with no tokens yet ([1, heads, 0, head size]), for graphs that take the past on every step.
    fn empty_cache(&self, part: &'static str) -> Result<DynValue, DecodeError> {
        let m = &self.model;
        let shape = vec![1i64, m.kv_heads as i64, 0, m.kv_head_dim as i64];
        Ok(Tensor::<f32>::from_array((shape, Vec::new()))
            .map_err(ort_err(part))?
            .into_dyn())
    }

    fn empty_caches(&self, n: usize, part: &'static str) -> Result<Vec<DynValue>, DecodeError> {
        (0..n).map(|_| self.empty_cache(part)).collect()
    }

    /// Runs the prompt through the first decoder.
    pub(super) fn first_step(
        &mut self,
        enc: DynValue,
        prompt: &[i64],
        also_row: Option<usize>,
        in_ort: &mut Duration,
    ) -> Result<FirstStep, DecodeError> {
        const PART: &str = "decoder";
        let io = self.model.first_io;
        let ids = Tensor::from_array((vec![1i64, prompt.len() as i64], prompt.to_vec()))
            .map_err(ort_err(PART))?;
        let empty_self = if io.past_self {
            self.empty_caches(self.past_self_names.len(), PART)?
        } else {
            Vec::new()
        };
        let empty_cross = if io.past_cross {
            self.empty_caches(self.past_cross_names.len(), PART)?
        } else {
            Vec::new()
        };
        let mut inputs: Vec<(Cow<str>, SessionInputValue)> = vec![
            (Cow::Borrowed("input_ids"), ids.into()),
            (Cow::Borrowed("encoder_hidden_states"), (&enc).into()),
        ];
        if io.use_cache_branch {
            let flag = Tensor::from_array((vec![1i64], vec![false])).map_err(ort_err(PART))?;
            inputs.push((Cow::Borrowed("use_cache_branch"), flag.into()));
        }
        for (name, v) in self.past_self_names.iter().zip(&empty_self) {
            inputs.push((Cow::Borrowed(name.as_str()), v.into()));
        }
        for (name, v) in self.past_cross_names.iter().zip(&empty_cross) {
            inputs.push((Cow::Borrowed(name.as_str()), v.into()));
        }
        let mut out = run_timed(&mut self.model.decoder, inputs, in_ort).map_err(ort_err(PART))?;
        let file = self.model.decoder_file;
        Self::observe(&mut self.observer, file, &out)?;
        let logits = logits_row(&out, PART, None)?;
        let row = also_row
            .map(|r| logits_row(&out, PART, Some(r)))
            .transpose()?;
        let self_kv = take_outputs(&mut out, &self.present_self_names, PART)?;
        let cross = if !self.model.step_io.past_cross {
            Vec::new()
        } else if io.present_cross {
            take_outputs(&mut out, &self.present_cross_names, PART)?
        } else {
            // The step graph recomputes cross-attention from encoder_hidden_states; its cross past stays empty.
            drop(out);
            self.empty_caches(self.past_cross_names.len(), PART)?
        };
        let state = StepState {
            enc,
            cross,
            self_kv,
            cache_len: prompt.len(),
        };
        Ok(FirstStep { logits, row, state })
    }

    /// One decoder step with the cache for `token`; the state's self-attention cache grows by one.
    pub(super) fn next_step(
        &mut self,
        state: &mut StepState,
        token: i64,
        in_ort: &mut Duration,
    ) -> Result<Vec<f32>, DecodeError> {
        let self_kv = std::mem::take(&mut state.self_kv);
        let inputs = self_kv.into_iter().map(SessionInputValue::from).collect();
        let (logits, present) = self.step_with(state, inputs, token, in_ort)?;
        state.self_kv = present;
        state.cache_len += 1;
        Ok(logits)
    }

    /// One decoder step that leaves `state` as it was (for latency measurement).
    pub fn bench_step(
        &mut self,
        state: &StepState,
        token: i64,
        in_ort: &mut Duration,
    ) -> Result<(), DecodeError> {
        let refs = state.self_kv.iter().map(SessionInputValue::from).collect();
        self.step_with(state, refs, token, in_ort).map(|_| ())
    }

    fn step_with<'v>(
        &mut self,
        state: &'v StepState,
        self_kv: Vec<SessionInputValue<'v>>,
        token: i64,
        in_ort: &mut Duration,
    ) -> Result<(Vec<f32>, Vec<DynValue>), DecodeError> {
        let part = if self.model.decoder_with_past.is_some() {
            "decoder_with_past"
        } else {
            "decoder"
        };
        let io = self.model.step_io;
        let ids = Tensor::from_array((vec![1i64, 1], vec![token])).map_err(ort_err(part))?;
        let mut inputs: Vec<(Cow<str>, SessionInputValue)> =
            Vec::with_capacity(3 + 4 * self.model.n_layers);
        inputs.push((Cow::Borrowed("input_ids"), ids.into()));
        if io.encoder_states {
            inputs.push((Cow::Borrowed("encoder_hidden_states"), (&state.enc).into()));
        }
        if io.use_cache_branch {
            let flag = Tensor::from_array((vec![1i64], vec![true])).map_err(ort_err(part))?;
            inputs.push((Cow::Borrowed("use_cache_branch"), flag.into()));
        }
        for (name, v) in self.past_self_names.iter().zip(self_kv) {
            inputs.push((Cow::Borrowed(name.as_str()), v));
        }
        for (name, v) in self.past_cross_names.iter().zip(&state.cross) {
            inputs.push((Cow::Borrowed(name.as_str()), v.into()));
        }
        let file = if self.model.decoder_with_past.is_some() {
            super::model::DECODER_PAST_FILE
        } else {
            self.model.decoder_file
        };
        let session = match self.model.decoder_with_past.as_mut() {
            Some(s) => s,
            None => &mut self.model.decoder,
        };
        let mut out = run_timed(session, inputs, in_ort).map_err(ort_err(part))?;
        Self::observe(&mut self.observer, file, &out)?;
        let logits = logits_row(&out, part, None)?;
        let present = take_outputs(&mut out, &self.present_self_names, part)?;
        Ok((logits, present))
    }

    /// Greedy decoding of one window. Returns the generated ids and whether the repetition guard fired.
    fn greedy(
        &mut self,
        enc: DynValue,
        in_ort: &mut Duration,
    ) -> Result<(Vec<i64>, bool), DecodeError> {
        let prompt = self.prompt.clone();
        let max_new = self.options.max_new_tokens.min(
            self.model
                .config
                .max_target_positions
                .saturating_sub(prompt.len()),
        );
        let FirstStep {
            logits, mut state, ..
        } = self.first_step(enc, &prompt, None, in_ort)?;
        let mut next = argmax_allowed(&logits, &self.suppress_begin);
        let mut out = Vec::new();
        while next != self.model.tokens.eot && out.len() < max_new {
            out.push(next);
            if let Some(keep) = repetition_cut(&out) {
                out.truncate(keep);
                return Ok((out, true));
            }
            if out.len() == max_new {
                break;
            }
            let logits = self.next_step(&mut state, next, in_ort)?;
            next = argmax_allowed(&logits, &self.suppress);
        }
        Ok((out, false))
    }

    /// Caches as they stand after decoding `cache_len` tokens of real audio (for the decoder-step benchmark).
    pub fn step_state(
        &mut self,
        window: &[f32],
        cache_len: usize,
    ) -> Result<(StepState, i64), DecodeError> {
        let mut t = Duration::ZERO;
        let enc = self.encode(window, &mut t)?;
        let prompt = self.model.tokens.prompt();
        let FirstStep {
            logits, mut state, ..
        } = self.first_step(enc, &prompt, None, &mut t)?;
        let mut next = argmax_allowed(&logits, &self.suppress_begin);
        while state.cache_len < cache_len {
            // Past the end of speech the model keeps predicting end-of-text; feed it anyway to grow the cache.
            let logits = self.next_step(&mut state, next, &mut t)?;
            next = argmax_allowed(&logits, &self.suppress);
        }
        Ok((state, next))
    }
}

fn take_outputs(
    out: &mut ort::session::SessionOutputs,
    names: &[String],
    part: &'static str,
) -> Result<Vec<DynValue>, DecodeError> {
    names
        .iter()
        .map(|n| {
            out.remove(n.as_str()).ok_or(DecodeError::Output {
                part,
                name: n.clone(),
            })
        })
        .collect()
}

/// Row `row` of the logits (the last one for `None`).
fn logits_row(
    out: &ort::session::SessionOutputs,
    part: &'static str,
    row: Option<usize>,
) -> Result<Vec<f32>, DecodeError> {
    let missing = || DecodeError::Output {
        part,
        name: "logits".into(),
    };
    let v = out.get("logits").ok_or_else(missing)?;
    let (shape, data) = v.try_extract_tensor::<f32>().map_err(|_| missing())?;
    let vocab = *shape.last().ok_or_else(missing)? as usize;
    if vocab == 0 || data.len() < vocab {
        return Err(missing());
    }
    let rows = data.len() / vocab;
    let r = row.unwrap_or(rows - 1);
    if r >= rows {
        return Err(missing());
    }
    Ok(data[r * vocab..(r + 1) * vocab].to_vec())
}

fn argmax_allowed(logits: &[f32], suppressed: &[bool]) -> i64 {
    let mut best = (f32::NEG_INFINITY, 0usize);
    for (i, &v) in logits.iter().enumerate() {
        if suppressed.get(i).copied().unwrap_or(false) {
            continue;
        }
        if v > best.0 {
            best = (v, i);
        }
    }
    best.1 as i64
}

/// If the tail of `ids` is one block of `p` tokens repeated enough times (16 tokens for p = 1, at least 4
/// repeats otherwise), returns the length that keeps a single copy of the block.
fn repetition_cut(ids: &[i64]) -> Option<usize> {
    for p in 1..=32usize {
        let repeats = (16 / p).max(4);
        let span = p * repeats;
        if ids.len() < span {
            continue;
        }
        let tail = &ids[ids.len() - span..];
        if tail.chunks_exact(p).all(|c| c == &tail[..p]) {
            return Some(ids.len() - span + p);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_skips_suppressed_ids() {
        let logits = [0.1, 5.0, 3.0, 4.0];
        assert_eq!(argmax_allowed(&logits, &[false; 4]), 1);
        assert_eq!(argmax_allowed(&logits, &[false, true, false, false]), 3);
    }

    #[test]
    fn repetition_guard_cuts_loops_but_not_normal_text() {
        let normal: Vec<i64> = (0..100).collect();
        assert_eq!(repetition_cut(&normal), None);
        let short_echo = [5, 6, 7, 7, 7];
        assert_eq!(repetition_cut(&short_echo), None);
        let mut looped = vec![1, 2, 3];
        for _ in 0..5 {
            looped.extend([9, 8, 7]);
        }
        assert_eq!(repetition_cut(&looped), Some(6));
        let same = vec![4i64; 16];
        assert_eq!(repetition_cut(&same), Some(1));
    }
}
