//! Long-form transcription as openai-whisper's `transcribe()` and faster-whisper's `generate_segments` do
//! it: timestamp tokens on, each window starts where the last complete segment ended, the text decoded so
//! far is the next window's prompt (`<|startofprev|>`), and a window that decodes badly (too repetitive,
//! too improbable) is decoded again at a higher temperature. The timestamp rules and the scores follow
//! CTranslate2's Whisper `generate` (which faster-whisper calls), so the segments can be compared with it.

use std::time::{Duration, Instant};

use ort::value::DynValue;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::decode::{DecodeError, FirstStep, Pipeline};
use super::features::{HOP, SAMPLE_RATE, WINDOW_FRAMES};

/// Seconds per mel frame.
const FRAME_SECONDS: f64 = HOP as f64 / SAMPLE_RATE as f64;
/// Seconds per timestamp token.
const TIMESTAMP_SECONDS: f64 = 0.02;
/// Mel frames per timestamp token (the encoder's stride).
const FRAMES_PER_TIMESTAMP: usize = 2;

/// The rules of [`Pipeline::transcribe_long`]; the defaults are openai-whisper's `transcribe()`'s with
/// greedy decoding at temperature 0.
#[derive(Debug, Clone, PartialEq)]
pub struct LongFormOptions {
    /// Tried in order until a window's decoding passes the thresholds.
    pub temperatures: Vec<f32>,
    /// Decode again when the text's gzip compression ratio is above this (repetitive text).
    pub compression_ratio_threshold: Option<f64>,
    /// Decode again when the average log probability per token is below this.
    pub logprob_threshold: Option<f64>,
    /// A window whose `<|nospeech|>` probability is above this (and whose log probability is below
    /// `logprob_threshold`) is silence: skipped.
    pub no_speech_threshold: Option<f64>,
    /// Prompt each window with the text decoded so far.
    pub condition_on_previous_text: bool,
    /// The prompt restarts after a window decoded above this temperature.
    pub prompt_reset_on_temperature: f32,
    /// Latest time (seconds) the first timestamp of a window may name.
    pub max_initial_timestamp: f64,
    /// Samples drawn at each temperature above 0; the most probable is kept.
    pub best_of: usize,
    /// Seed of the sampling at temperatures above 0.
    pub seed: u64,
}

impl Default for LongFormOptions {
    fn default() -> Self {
        LongFormOptions {
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            compression_ratio_threshold: Some(2.4),
            logprob_threshold: Some(-1.0),
            no_speech_threshold: Some(0.6),
            condition_on_previous_text: true,
            prompt_reset_on_temperature: 0.5,
            max_initial_timestamp: 1.0,
            best_of: 5,
            seed: 0,
        }
    }
}

/// One timed piece of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Seconds from the start of the audio.
    pub start: f64,
    pub end: f64,
    /// As decoded, with its leading space.
    pub text: String,
    /// The segment's tokens, its timestamps included.
    pub tokens: Vec<i64>,
    /// Of the window's whole decoding (as openai-whisper and faster-whisper report it).
    pub avg_logprob: f64,
    pub no_speech_prob: f64,
    pub compression_ratio: f64,
    pub temperature: f32,
    /// The mel frame its window started at.
    pub seek: usize,
}

#[derive(Debug, Clone)]
pub struct LongTranscription {
    pub segments: Vec<Segment>,
    /// 30 s windows decoded (a window's fallbacks count once).
    pub windows: usize,
    /// Audio length in seconds.
    pub duration: f64,
    pub total: Duration,
    pub in_ort: Duration,
}

impl LongTranscription {
    /// The segments' texts joined, as faster-whisper's users join them.
    pub fn text(&self) -> String {
        let joined: String = self.segments.iter().map(|s| s.text.as_str()).collect();
        joined.trim().to_string()
    }
}

/// A window's decoding at one temperature.
#[derive(Debug, Clone)]
struct Decoded {
    tokens: Vec<i64>,
    /// Sum of the chosen tokens' log probabilities, end-of-text included.
    sum_logprob: f64,
    no_speech_prob: f64,
    avg_logprob: f64,
    compression_ratio: f64,
    temperature: f32,
}

/// What the timestamp rules need to know of the vocabulary.
#[derive(Debug, Clone, Copy)]
struct TimestampRules {
    eot: usize,
    no_timestamps: usize,
    begin: usize,
    max_initial: usize,
}

impl TimestampRules {
    /// CTranslate2's `ApplyTimestampRules`: timestamps come in pairs and never go back; the first token is a
    /// timestamp no later than `max_initial`; when the timestamps together are more probable than any
    /// text token, a timestamp it is.
    fn apply(&self, logits: &mut [f32], generated: &[i64]) {
        let bar = |l: &mut [f32], r: std::ops::Range<usize>| {
            let end = r.end.min(l.len());
            for v in &mut l[r.start.min(end)..end] {
                *v = f32::NEG_INFINITY;
            }
        };
        let n = logits.len();
        bar(logits, self.no_timestamps..self.no_timestamps + 1);
        let mut check = false;
        match generated.last().map(|&t| t as usize) {
            None => {
                bar(logits, 0..self.begin);
                bar(logits, self.begin + self.max_initial + 1..n);
            }
            Some(last) if last >= self.begin => {
                let penultimate = if generated.len() >= 2 {
                    generated[generated.len() - 2] as usize
                } else {
                    last
                };
                if penultimate >= self.begin {
                    bar(logits, self.begin..n);
                } else {
                    bar(logits, 0..self.eot);
                    bar(logits, self.begin..last);
                    check = true;
                }
            }
            Some(_) => {
                check = true;
                if let Some(&ts) = generated.iter().rev().find(|&&t| t as usize >= self.begin) {
                    bar(logits, self.begin..ts as usize + 1);
                }
            }
        }
        if check {
            let logprobs = log_softmax(logits);
            let text_max = logprobs[..self.begin.min(n)]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            let timestamps = log_sum_exp(&logprobs[self.begin.min(n)..]);
            if timestamps > text_max {
                bar(logits, 0..self.begin);
            }
        }
    }
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let lse = log_sum_exp(logits);
    logits.iter().map(|&v| v - lse).collect()
}

fn log_sum_exp(values: &[f32]) -> f32 {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    let sum: f64 = values.iter().map(|&v| f64::from(v - max).exp()).sum();
    max + sum.ln() as f32
}

/// gzip's view of repetitiveness: text bytes over their zlib-compressed bytes (openai-whisper's
/// `compression_ratio`, zlib level 6).
pub fn compression_ratio(text: &str) -> f64 {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    let packed = z
        .write_all(text.as_bytes())
        .and_then(|()| z.finish())
        .map(|v| v.len())
        .unwrap_or(1);
    text.len() as f64 / packed.max(1) as f64
}

/// A window's tokens cut at its timestamps, and where the next window starts.
#[derive(Debug, Clone, PartialEq)]
struct Split {
    /// (start s, end s, tokens).
    pieces: Vec<(f64, f64, Vec<i64>)>,
    next_seek: usize,
}

/// faster-whisper's `_split_segments_by_timestamps`: a segment ends at each pair of adjacent timestamps;
/// an unfinished last segment is dropped and decoded again from its start in the next window.
fn split_by_timestamps(
    tokens: &[i64],
    timestamp_begin: i64,
    seek: usize,
    segment_size: usize,
) -> Split {
    let time_offset = seek as f64 * FRAME_SECONDS;
    let is_ts = |t: i64| t >= timestamp_begin;
    let single_timestamp_ending =
        tokens.len() >= 2 && !is_ts(tokens[tokens.len() - 2]) && is_ts(tokens[tokens.len() - 1]);
    let consecutive: Vec<usize> = (1..tokens.len())
        .filter(|&i| is_ts(tokens[i]) && is_ts(tokens[i - 1]))
        .collect();
    let mut pieces = Vec::new();
    if !consecutive.is_empty() {
        let mut slices = consecutive;
        if single_timestamp_ending {
            slices.push(tokens.len());
        }
        let mut last = 0;
        for &cut in &slices {
            let piece = &tokens[last..cut];
            let start = time_offset + (piece[0] - timestamp_begin) as f64 * TIMESTAMP_SECONDS;
            let end =
                time_offset + (piece[piece.len() - 1] - timestamp_begin) as f64 * TIMESTAMP_SECONDS;
            pieces.push((start, end, piece.to_vec()));
            last = cut;
        }
        let next_seek = if single_timestamp_ending {
            seek + segment_size
        } else {
            let position = (tokens[last - 1] - timestamp_begin) as usize;
            seek + position * FRAMES_PER_TIMESTAMP
        };
        Split { pieces, next_seek }
    } else {
        let mut duration = segment_size as f64 * FRAME_SECONDS;
        if let Some(&last) = tokens.iter().rev().find(|&&t| is_ts(t)) {
            if last != timestamp_begin {
                duration = (last - timestamp_begin) as f64 * TIMESTAMP_SECONDS;
            }
        }
        pieces.push((time_offset, time_offset + duration, tokens.to_vec()));
        Split {
            pieces,
            next_seek: seek + segment_size,
        }
    }
}

impl Pipeline {
    /// Transcribes 16 kHz mono samples of any length into timed segments; `on_segment` sees each as soon
    /// as its window is decoded.
    pub fn transcribe_long(
        &mut self,
        samples: &[f32],
        options: &LongFormOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<LongTranscription, DecodeError> {
        let start = Instant::now();
        let mut in_ort = Duration::ZERO;
        let mel = self.features(samples);
        let content_frames = mel.content_frames();
        let max_length = self.model.config.max_target_positions;
        let mut rng = StdRng::seed_from_u64(options.seed);
        let mut seek = 0usize;
        let mut all_tokens: Vec<i64> = Vec::new();
        let mut prompt_reset_since = 0usize;
        let mut segments = Vec::new();
        let mut windows = 0;
        while seek < content_frames {
            windows += 1;
            let segment_size = WINDOW_FRAMES.min(content_frames - seek);
            let enc = self.encode(&mel.window(seek), &mut in_ort)?;
            let previous = &all_tokens[prompt_reset_since..];
            let mut prompt = Vec::new();
            if !previous.is_empty() {
                if let Some(prev) = self.model.tokens.sot_prev {
                    prompt.push(prev);
                    let keep = (max_length / 2).saturating_sub(1);
                    prompt.extend(&previous[previous.len().saturating_sub(keep)..]);
                }
            }
            let sot_index = prompt.len();
            prompt.extend(&self.sot_sequence);
            let decoded =
                self.decode_with_fallback(enc, &prompt, sot_index, options, &mut rng, &mut in_ort)?;
            if let Some(threshold) = options.no_speech_threshold {
                let confident = options
                    .logprob_threshold
                    .is_some_and(|l| decoded.avg_logprob > l);
                if decoded.no_speech_prob > threshold && !confident {
                    seek += segment_size;
                    continue;
                }
            }
            let window_seek = seek;
            let split = split_by_timestamps(
                &decoded.tokens,
                self.model.tokens.timestamp_begin(),
                seek,
                segment_size,
            );
            seek = split.next_seek;
            for (start, end, tokens) in split.pieces {
                let text = self.raw_text(&tokens);
                if start == end || text.trim().is_empty() {
                    continue;
                }
                all_tokens.extend(&tokens);
                let segment = Segment {
                    start,
                    end,
                    text,
                    tokens,
                    avg_logprob: decoded.avg_logprob,
                    no_speech_prob: decoded.no_speech_prob,
                    compression_ratio: decoded.compression_ratio,
                    temperature: decoded.temperature,
                    seek: window_seek,
                };
                on_segment(&segment);
                segments.push(segment);
            }
            if !options.condition_on_previous_text
                || decoded.temperature > options.prompt_reset_on_temperature
            {
                prompt_reset_since = all_tokens.len();
            }
        }
        Ok(LongTranscription {
            segments,
            windows,
            duration: samples.len() as f64 / SAMPLE_RATE as f64,
            total: start.elapsed(),
            in_ort,
        })
    }

    /// faster-whisper's `generate_with_fallback`: the first temperature whose decoding is neither too
    /// repetitive nor too improbable (unless it is silence); when none passes, the most probable decoding
    /// among the ones that were not too repetitive.
    fn decode_with_fallback(
        &mut self,
        mut enc: DynValue,
        prompt: &[i64],
        sot_index: usize,
        options: &LongFormOptions,
        rng: &mut StdRng,
        in_ort: &mut Duration,
    ) -> Result<Decoded, DecodeError> {
        let mut all: Vec<Decoded> = Vec::new();
        let mut below_cr: Vec<Decoded> = Vec::new();
        let temperatures = if options.temperatures.is_empty() {
            vec![0.0]
        } else {
            options.temperatures.clone()
        };
        let mut last_temperature = 0.0;
        for &temperature in &temperatures {
            last_temperature = temperature;
            let (decoded, back) = if temperature > 0.0 {
                let mut best: Option<Decoded> = None;
                for _ in 0..options.best_of.max(1) {
                    let (d, e) =
                        self.generate(enc, prompt, sot_index, temperature, options, rng, in_ort)?;
                    enc = e;
                    let score = |d: &Decoded| d.sum_logprob / d.tokens.len().max(1) as f64;
                    if best.as_ref().is_none_or(|b| score(&d) > score(b)) {
                        best = Some(d);
                    }
                }
                (best.expect("best_of ≥ 1"), enc)
            } else {
                self.generate(enc, prompt, sot_index, temperature, options, rng, in_ort)?
            };
            enc = back;
            let mut needs_fallback = false;
            if let Some(th) = options.compression_ratio_threshold {
                if decoded.compression_ratio > th {
                    needs_fallback = true;
                } else {
                    below_cr.push(decoded.clone());
                }
            }
            let improbable = options
                .logprob_threshold
                .is_some_and(|l| decoded.avg_logprob < l);
            if improbable {
                needs_fallback = true;
            }
            if improbable
                && options
                    .no_speech_threshold
                    .is_some_and(|n| decoded.no_speech_prob > n)
            {
                needs_fallback = false;
            }
            if !needs_fallback {
                return Ok(decoded);
            }
            all.push(decoded);
        }
        let pool = if below_cr.is_empty() { all } else { below_cr };
        let mut best = pool
            .into_iter()
            .reduce(|a, b| if b.avg_logprob > a.avg_logprob { b } else { a })
            .expect("at least one temperature was tried");
        best.temperature = last_temperature;
        Ok(best)
    }

    /// One decoding of a window at `temperature` (0: greedy) with the timestamp rules; hands the encoder
    /// output back for the next try.
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &mut self,
        enc: DynValue,
        prompt: &[i64],
        sot_index: usize,
        temperature: f32,
        options: &LongFormOptions,
        rng: &mut StdRng,
        in_ort: &mut Duration,
    ) -> Result<(Decoded, DynValue), DecodeError> {
        let t = &self.model.tokens;
        let rules = TimestampRules {
            eot: t.eot as usize,
            no_timestamps: t.no_timestamps as usize,
            begin: t.timestamp_begin() as usize,
            max_initial: (options.max_initial_timestamp / TIMESTAMP_SECONDS)
                .round()
                .max(0.0) as usize,
        };
        let eot = t.eot;
        let no_speech = t.no_speech;
        let positions = self.model.config.max_target_positions;
        // CTranslate2 gives a window half the decoder's positions, less what the prompt takes.
        let max_new = (positions / 2).min(positions.saturating_sub(prompt.len().saturating_sub(1)));
        let FirstStep {
            mut logits,
            row: sot_row,
            mut state,
        } = self.first_step(enc, prompt, Some(sot_index), in_ort)?;
        let no_speech_prob = match (no_speech, sot_row) {
            (Some(id), Some(row)) => {
                let p = log_softmax(&row);
                p.get(id as usize).map_or(0.0, |&v| f64::from(v).exp())
            }
            _ => 0.0,
        };
        let mut tokens = Vec::new();
        let mut sum_logprob = 0.0f64;
        for step in 0..max_new {
            for (v, &barred) in logits.iter_mut().zip(&self.suppress_text) {
                if barred {
                    *v = f32::NEG_INFINITY;
                }
            }
            if step == 0 {
                for &id in &self.begin_suppressed {
                    if let Some(v) = logits.get_mut(id as usize) {
                        *v = f32::NEG_INFINITY;
                    }
                }
            }
            rules.apply(&mut logits, &tokens);
            let logprobs = log_softmax(&logits);
            let next = if temperature > 0.0 {
                sample(&logprobs, temperature, rng)
            } else {
                argmax(&logprobs)
            };
            sum_logprob += f64::from(logprobs[next]);
            if next as i64 == eot {
                break;
            }
            tokens.push(next as i64);
            if step + 1 == max_new {
                break;
            }
            logits = self.next_step(&mut state, next as i64, in_ort)?;
        }
        let text = self.raw_text(&tokens);
        let compression_ratio = compression_ratio(text.trim());
        let decoded = Decoded {
            avg_logprob: sum_logprob / (tokens.len() + 1) as f64,
            tokens,
            sum_logprob,
            no_speech_prob,
            compression_ratio,
            temperature,
        };
        Ok((decoded, state.enc))
    }
}

fn argmax(values: &[f32]) -> usize {
    let mut best = (f32::NEG_INFINITY, 0usize);
    for (i, &v) in values.iter().enumerate() {
        if v > best.0 {
            best = (v, i);
        }
    }
    best.1
}

/// Draws from softmax(logprobs / temperature).
fn sample(logprobs: &[f32], temperature: f32, rng: &mut StdRng) -> usize {
    let scaled: Vec<f32> = logprobs.iter().map(|&v| v / temperature).collect();
    let lse = log_sum_exp(&scaled);
    let mut u: f64 = rng.random::<f64>();
    let mut last_allowed = argmax(&scaled);
    for (i, &v) in scaled.iter().enumerate() {
        if v == f32::NEG_INFINITY {
            continue;
        }
        last_allowed = i;
        u -= f64::from(v - lse).exp();
        if u <= 0.0 {
            return i;
        }
    }
    last_allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    // tiny.en's layout: text < 50256 = eot, …, 50362 = notimestamps, 50363 = <|0.00|>, vocabulary 51864.
    const RULES: TimestampRules = TimestampRules {
        eot: 50256,
        no_timestamps: 50362,
        begin: 50363,
        max_initial: 50,
    };
    const VOCAB: usize = 51864;

    fn allowed(logits: &[f32]) -> Vec<usize> {
        (0..logits.len())
            .filter(|&i| logits[i] > f32::NEG_INFINITY)
            .collect()
    }

    #[test]
    fn first_token_is_an_early_timestamp() {
        let mut l = vec![0.0f32; VOCAB];
        RULES.apply(&mut l, &[]);
        assert_eq!(allowed(&l), (50363..=50413).collect::<Vec<_>>());
    }

    #[test]
    fn after_a_timestamp_pair_comes_text_and_after_text_no_earlier_timestamp() {
        let b = RULES.begin as i64;
        // <|0.00|> alone counts as a pair: text (or end-of-text) next.
        let mut l = vec![0.0f32; VOCAB];
        RULES.apply(&mut l, &[b]);
        assert!(allowed(&l).iter().all(|&i| i < RULES.begin));
        // After text, timestamps up to the last one are barred; text still possible (uniform logits:
        // the 1500 timestamps together outweigh any one text token, so a timestamp it must be).
        let mut l = vec![0.0f32; VOCAB];
        RULES.apply(&mut l, &[b + 10, 400]);
        assert_eq!(allowed(&l), (50374..VOCAB).collect::<Vec<_>>());
        // A text token far more likely than all timestamps together stays possible.
        let mut l = vec![0.0f32; VOCAB];
        l[400] = 20.0;
        RULES.apply(&mut l, &[b + 10, 400]);
        assert!(allowed(&l).contains(&400));
        assert!(!allowed(&l).contains(&(RULES.begin + 10)));
        // text then a timestamp: the closing one; text barred, eot or a later timestamp.
        let mut l = vec![0.0f32; VOCAB];
        l[400] = 20.0;
        l[RULES.eot] = 20.0;
        RULES.apply(&mut l, &[b, 400, b + 30]);
        let a = allowed(&l);
        assert!(a.contains(&RULES.eot) && a.contains(&(RULES.begin + 30)));
        assert!(!a.contains(&400) && !a.contains(&(RULES.begin + 29)));
        assert!(!a.contains(&RULES.no_timestamps));
    }

    #[test]
    fn split_keeps_complete_segments_and_seeks_to_the_last_timestamp() {
        let b = 50363i64;
        // <|0.00|> a <|1.00|><|1.20|> b <|2.40|><|2.60|> c  (unfinished)
        let tokens = [b, 1, b + 50, b + 60, 2, b + 120, b + 130, 3];
        let s = split_by_timestamps(&tokens, b, 1000, 3000);
        assert_eq!(s.pieces.len(), 2);
        assert_eq!(s.pieces[0], (10.0, 11.0, vec![b, 1, b + 50]));
        assert!((s.pieces[1].0 - 11.2).abs() < 1e-9 && (s.pieces[1].1 - 12.4).abs() < 1e-9);
        // Next window from the last complete segment's end: <|2.40|> is 120 × 2 frames past the seek.
        assert_eq!(s.next_seek, 1000 + 240);
        // Ending on a single timestamp: no speech after it, the whole window is consumed.
        let tokens = [b, 1, b + 50, b + 60, 2, b + 120];
        let s = split_by_timestamps(&tokens, b, 0, 3000);
        assert_eq!(s.pieces.len(), 2);
        assert_eq!(s.next_seek, 3000);
        // No pair at all: one segment to the last timestamp.
        let s = split_by_timestamps(&[b, 1, 2, b + 75], b, 0, 2000);
        assert_eq!(s.pieces, vec![(0.0, 1.5, vec![b, 1, 2, b + 75])]);
        assert_eq!(s.next_seek, 2000);
    }

    #[test]
    fn compression_ratio_matches_zlib() {
        // Python 3.11 (zlib 1.2.13): len(t) / len(zlib.compress(t)) for these strings.
        assert_eq!(compression_ratio("hello world"), 11.0 / 19.0);
        let ljspeech = "Printing, then, for our purpose, may be considered as the art of making books by means of movable types.";
        assert_eq!(compression_ratio(ljspeech), 104.0 / 90.0);
        let looped = "the cat sat on the mat. ".repeat(20);
        assert_eq!(compression_ratio(&looped), 480.0 / 34.0);
    }

    #[test]
    fn sampling_follows_the_distribution_and_never_picks_a_barred_token() {
        let mut rng = StdRng::seed_from_u64(7);
        let lp = log_softmax(&[0.0, f32::NEG_INFINITY, (3.0f32).ln()]);
        let mut counts = [0usize; 3];
        for _ in 0..4000 {
            counts[sample(&lp, 1.0, &mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = counts[2] as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "{share}");
    }
}
