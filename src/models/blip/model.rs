//! A BLIP model folder in the seed's three-part layout, opened as three ORT sessions:
//! `vision_model.onnx` (`pixel_values` → image embeddings), `text_encoder.onnx` (question tokens attending
//! to the image), `text_decoder_with_past.onnx` (one greedy step with a key/value cache), `tokenizer.json`
//! (BERT WordPiece) and `blip.json`. Only file and tensor names are relied on; the loader names whatever
//! is missing.

use std::path::{Path, PathBuf};

use ort::session::Session;
use serde::{Deserialize, Serialize};

use super::preprocess::ImageConfig;

pub const VISION_FILE: &str = "vision_model.onnx";
pub const TEXT_ENCODER_FILE: &str = "text_encoder.onnx";
pub const TEXT_DECODER_FILE: &str = "text_decoder_with_past.onnx";
pub const CONFIG_FILE: &str = "blip.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const GRAPH_FILES: [&str; 3] = [VISION_FILE, TEXT_ENCODER_FILE, TEXT_DECODER_FILE];

/// The text inputs both text graphs take.
pub const TEXT_INPUTS: [&str; 4] = [
    "input_ids",
    "attention_mask",
    "encoder_hidden_states",
    "encoder_attention_mask",
];

/// `blip.json`: what the graphs cannot say about themselves. Defaults are blip-vqa-base's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlipConfig {
    /// Side of the square image the vision graph takes.
    pub image_size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// The decoder's start token ([DEC] in BLIP's tokenizer).
    pub bos_token_id: i64,
    /// Ends an answer or a caption ([SEP]).
    pub sep_token_id: i64,
    pub pad_token_id: i64,
    /// Most tokens generated (the seed's max_length).
    pub max_length: usize,
    /// Longest question, in tokens with [CLS] and [SEP]; longer ones are cut (and the cut is reported).
    pub max_question_tokens: usize,
    /// Name of the vision graph's output.
    pub image_embeds: String,
    /// Prefixes of the decoder's cache inputs and outputs (one per layer and key/value, in graph order).
    pub past_prefix: String,
    pub present_prefix: String,
    /// The weights are seeded random numbers (a model for speed only): its accuracy means nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub random_weights: bool,
}

/// Bounds on blip.json's sizes (blip-vqa-base: 384 px, 20 tokens, 512 positions); the graphs' own shapes
/// are checked against them at open.
const IMAGE_SIZES: std::ops::RangeInclusive<u32> = 1..=4096;
const MAX_LENGTH: usize = 512;
const MAX_QUESTION_TOKENS: usize = 4096;

impl BlipConfig {
    /// blip.json's text, every value checked.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: BlipConfig = serde_json::from_str(text).map_err(|e| format!("invalid: {e}"))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if !IMAGE_SIZES.contains(&self.image_size) {
            return Err(format!(
                "`image_size` is {}, outside {}..={}",
                self.image_size,
                IMAGE_SIZES.start(),
                IMAGE_SIZES.end()
            ));
        }
        if !self.mean.iter().all(|m| m.is_finite()) {
            return Err(format!("`mean` {:?} must be finite", self.mean));
        }
        if !self.std.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(format!("`std` {:?} must be finite and above 0", self.std));
        }
        for (key, id) in [
            ("bos_token_id", self.bos_token_id),
            ("sep_token_id", self.sep_token_id),
            ("pad_token_id", self.pad_token_id),
        ] {
            if !(0..i64::from(i32::MAX)).contains(&id) {
                return Err(format!("`{key}` is {id}, not a token id"));
            }
        }
        if !(1..=MAX_LENGTH).contains(&self.max_length) {
            return Err(format!(
                "`max_length` is {}, outside 1..={MAX_LENGTH}",
                self.max_length
            ));
        }
        if !(2..=MAX_QUESTION_TOKENS).contains(&self.max_question_tokens) {
            return Err(format!(
                "`max_question_tokens` is {}, outside 2..={MAX_QUESTION_TOKENS}",
                self.max_question_tokens
            ));
        }
        for (key, name) in [
            ("image_embeds", &self.image_embeds),
            ("past_prefix", &self.past_prefix),
            ("present_prefix", &self.present_prefix),
        ] {
            if name.is_empty() {
                return Err(format!("`{key}` is empty"));
            }
        }
        Ok(())
    }

    /// The token ids against the tokenizer's vocabulary, and the image size against the vision graph's.
    fn check_against(
        &self,
        vocab: usize,
        pixel_side: Option<i64>,
        logits: Option<i64>,
    ) -> Result<(), String> {
        let vocab = logits.map_or(vocab, |l| l as usize).max(vocab);
        for (key, id) in [
            ("bos_token_id", self.bos_token_id),
            ("sep_token_id", self.sep_token_id),
            ("pad_token_id", self.pad_token_id),
        ] {
            if id as usize >= vocab {
                return Err(format!(
                    "`{key}` is {id}, outside the vocabulary of {vocab} tokens"
                ));
            }
        }
        if let Some(side) = pixel_side.filter(|&s| s != i64::from(self.image_size)) {
            return Err(format!(
                "`image_size` is {}, but {VISION_FILE}'s `pixel_values` is {side} pixels a side",
                self.image_size
            ));
        }
        Ok(())
    }

    pub fn image(&self) -> ImageConfig {
        ImageConfig {
            image_size: self.image_size,
            mean: self.mean,
            std: self.std,
        }
    }
}

impl Default for BlipConfig {
    fn default() -> Self {
        let image = ImageConfig::default();
        BlipConfig {
            image_size: image.image_size,
            mean: image.mean,
            std: image.std,
            bos_token_id: 30_522,
            sep_token_id: 102,
            pad_token_id: 0,
            max_length: 20,
            max_question_tokens: 512,
            image_embeds: "last_hidden_state".into(),
            past_prefix: "past_key_values.".into(),
            present_prefix: "present.".into(),
            random_weights: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlipError {
    #[error("{path}: {what}")]
    Folder { path: PathBuf, what: String },
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
}

fn folder_err(path: &Path, what: impl Into<String>) -> BlipError {
    BlipError::Folder {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Shape of one empty cache tensor: [1, heads, 0, head size], read off the graph's input.
fn empty_cache_shape(s: &Session, name: &str, path: &Path) -> Result<Vec<i64>, BlipError> {
    let input = s.inputs().iter().find(|i| i.name() == name);
    let dims: Vec<i64> = input
        .and_then(|i| i.dtype().tensor_shape())
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    match dims.as_slice() {
        [_, heads, _, size] if *heads > 0 && *size > 0 => Ok(vec![1, *heads, 0, *size]),
        _ => Err(folder_err(
            path,
            format!("cache input `{name}` must be [batch, heads, length, head size] with fixed heads and head size, got {dims:?}"),
        )),
    }
}

pub struct BlipModel {
    pub dir: PathBuf,
    pub config: BlipConfig,
    pub tokenizer: tokenizers::Tokenizer,
    pub vision: Session,
    pub text_encoder: Session,
    pub decoder: Session,
    /// Cache inputs and the outputs that feed them on the next step, pairwise.
    pub past_names: Vec<String>,
    pub present_names: Vec<String>,
    pub empty_cache_shapes: Vec<Vec<i64>>,
}

impl BlipModel {
    pub fn open(dir: &Path, threads: usize) -> Result<Self, BlipError> {
        let missing: Vec<&str> = GRAPH_FILES
            .iter()
            .chain(&[TOKENIZER_FILE])
            .copied()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(folder_err(
                dir,
                format!("not a BLIP model folder: missing {}", missing.join(", ")),
            ));
        }
        let config_path = dir.join(CONFIG_FILE);
        let config = match std::fs::read_to_string(&config_path) {
            Ok(text) => BlipConfig::parse(&text).map_err(|what| folder_err(&config_path, what))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BlipConfig::default(),
            Err(e) => return Err(folder_err(&config_path, format!("cannot read: {e}"))),
        };
        let tokenizer_path = dir.join(TOKENIZER_FILE);
        let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| folder_err(&tokenizer_path, format!("not a tokenizer.json: {e}")))?;
        let open = |f: &str| crate::runtime::session(&dir.join(f), threads);
        let (vision, text_encoder, decoder) = (
            open(VISION_FILE)?,
            open(TEXT_ENCODER_FILE)?,
            open(TEXT_DECODER_FILE)?,
        );

        use crate::runtime::{absent, io_names, Side};
        let inputs = |s: &Session| io_names(s, Side::Inputs);
        let require = |file: &str, s: &Session, side: Side, want: &[&str], what: &str| {
            let missing = absent(s, side, want);
            if missing.is_empty() {
                return Ok(());
            }
            Err(folder_err(
                &dir.join(file),
                format!(
                    "{what} {} missing (has: {})",
                    missing.join(", "),
                    io_names(s, side).join(", ")
                ),
            ))
        };
        require(
            VISION_FILE,
            &vision,
            Side::Inputs,
            &["pixel_values"],
            "input",
        )?;
        require(
            VISION_FILE,
            &vision,
            Side::Outputs,
            &[config.image_embeds.as_str()],
            "output",
        )?;
        require(
            TEXT_ENCODER_FILE,
            &text_encoder,
            Side::Inputs,
            &TEXT_INPUTS,
            "input",
        )?;
        require(
            TEXT_ENCODER_FILE,
            &text_encoder,
            Side::Outputs,
            &["last_hidden_state"],
            "output",
        )?;
        require(
            TEXT_DECODER_FILE,
            &decoder,
            Side::Inputs,
            &TEXT_INPUTS,
            "input",
        )?;
        require(
            TEXT_DECODER_FILE,
            &decoder,
            Side::Outputs,
            &["logits"],
            "output",
        )?;

        {
            use crate::runtime::fixed_dim;
            let side = fixed_dim(&vision, Side::Inputs, "pixel_values", 2);
            let logits = fixed_dim(&decoder, Side::Outputs, "logits", usize::MAX);
            config
                .check_against(tokenizer.get_vocab_size(true), side, logits)
                .map_err(|what| folder_err(&config_path, what))?;
        }
        let past_names: Vec<String> = inputs(&decoder)
            .into_iter()
            .filter(|n| n.starts_with(&config.past_prefix))
            .collect();
        if past_names.is_empty() {
            return Err(folder_err(
                &dir.join(TEXT_DECODER_FILE),
                format!(
                    "no key/value cache inputs named `{}*` (inputs: {}); set past_prefix in blip.json if yours differ",
                    config.past_prefix,
                    inputs(&decoder).join(", ")
                ),
            ));
        }
        let present_names: Vec<String> = past_names
            .iter()
            .map(|p| {
                format!(
                    "{}{}",
                    config.present_prefix,
                    &p[config.past_prefix.len()..]
                )
            })
            .collect();
        let want: Vec<&str> = present_names.iter().map(String::as_str).collect();
        require(
            TEXT_DECODER_FILE,
            &decoder,
            Side::Outputs,
            &want,
            "cache output",
        )?;
        let path = dir.join(TEXT_DECODER_FILE);
        let empty_cache_shapes = past_names
            .iter()
            .map(|n| empty_cache_shape(&decoder, n, &path))
            .collect::<Result<_, _>>()?;
        Ok(BlipModel {
            dir: dir.to_path_buf(),
            config,
            tokenizer,
            vision,
            text_encoder,
            decoder,
            past_names,
            present_names,
            empty_cache_shapes,
        })
    }
}
