//! A Whisper model folder in optimum's ONNX layout, opened as three ORT sessions. Only file names and tensor
//! names are relied on (as optimum writes them), never how the graphs were built.

use std::path::{Path, PathBuf};

use ort::session::Session;

use super::tokens::SpecialTokens;

pub const ENCODER_FILE: &str = "encoder_model.onnx";
pub const DECODER_FILE: &str = "decoder_model.onnx";
pub const DECODER_PAST_FILE: &str = "decoder_with_past_model.onnx";
pub const PART_FILES: [&str; 3] = [ENCODER_FILE, DECODER_FILE, DECODER_PAST_FILE];

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {what}")]
    Folder { path: PathBuf, what: String },
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
}

fn folder_err(path: &Path, what: impl Into<String>) -> ModelError {
    ModelError::Folder {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// What the pipeline needs from config.json / generation_config.json.
#[derive(Debug, Clone)]
pub struct WhisperConfig {
    pub n_mels: usize,
    pub vocab_size: usize,
    pub suppress_tokens: Vec<i64>,
    pub begin_suppress_tokens: Vec<i64>,
    pub max_target_positions: usize,
}

impl WhisperConfig {
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let read = |name: &str| -> Result<Option<serde_json::Value>, ModelError> {
            let p = dir.join(name);
            if !p.exists() {
                return Ok(None);
            }
            let text = std::fs::read_to_string(&p)
                .map_err(|e| folder_err(&p, format!("cannot read: {e}")))?;
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| folder_err(&p, format!("not valid JSON: {e}")))
        };
        let config = read("config.json")?.ok_or_else(|| {
            folder_err(
                &dir.join("config.json"),
                "missing (every optimum Whisper export has one)",
            )
        })?;
        let generation = read("generation_config.json")?.unwrap_or_default();
        let ids = |key: &str| -> Vec<i64> {
            config
                .get(key)
                .or_else(|| generation.get(key))
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_i64()).collect())
                .unwrap_or_default()
        };
        let num = |key: &str, default: usize| -> usize {
            config
                .get(key)
                .and_then(|v| v.as_u64())
                .map_or(default, |v| v as usize)
        };
        Ok(WhisperConfig {
            n_mels: num("num_mel_bins", 80),
            vocab_size: num("vocab_size", 0),
            suppress_tokens: ids("suppress_tokens"),
            begin_suppress_tokens: ids("begin_suppress_tokens"),
            max_target_positions: num("max_target_positions", 448),
        })
    }
}

pub struct WhisperModel {
    pub dir: PathBuf,
    pub config: WhisperConfig,
    pub tokenizer: tokenizers::Tokenizer,
    pub tokens: SpecialTokens,
    pub encoder: Session,
    pub decoder: Session,
    pub decoder_with_past: Session,
    pub n_layers: usize,
    pub threads: usize,
}

impl WhisperModel {
    pub fn open(dir: &Path, threads: usize) -> Result<Self, ModelError> {
        for f in PART_FILES.iter().chain(&["tokenizer.json"]) {
            if !dir.join(f).is_file() {
                return Err(folder_err(
                    dir,
                    format!("not a Whisper model folder: {f} is missing (expected optimum's layout: {})", PART_FILES.join(", ")),
                ));
            }
        }
        let config = WhisperConfig::load(dir)?;
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = tokenizers::Tokenizer::from_file(&tok_path)
            .map_err(|e| folder_err(&tok_path, format!("invalid tokenizer: {e}")))?;
        let vocab = if config.vocab_size > 0 {
            config.vocab_size
        } else {
            tokenizer.get_vocab_size(true)
        };
        let tokens =
            SpecialTokens::lookup(&tokenizer, vocab).map_err(|what| folder_err(&tok_path, what))?;
        let encoder = crate::runtime::session(&dir.join(ENCODER_FILE), threads)?;
        let decoder = crate::runtime::session(&dir.join(DECODER_FILE), threads)?;
        let decoder_with_past = crate::runtime::session(&dir.join(DECODER_PAST_FILE), threads)?;
        let n_layers = decoder
            .outputs()
            .iter()
            .filter(|o| o.name().starts_with("present.") && o.name().ends_with(".decoder.key"))
            .count();
        let model = WhisperModel {
            dir: dir.to_path_buf(),
            config,
            tokenizer,
            tokens,
            encoder,
            decoder,
            decoder_with_past,
            n_layers,
            threads,
        };
        model.check_io()?;
        Ok(model)
    }

    /// Names every tensor the pipeline relies on that a graph lacks.
    fn check_io(&self) -> Result<(), ModelError> {
        let mut missing = Vec::new();
        let mut need = |s: &Session, file: &str, inputs: bool, names: Vec<String>| {
            let have: Vec<&str> = if inputs {
                s.inputs().iter().map(|o| o.name()).collect()
            } else {
                s.outputs().iter().map(|o| o.name()).collect()
            };
            for n in names {
                if !have.contains(&n.as_str()) {
                    missing.push(format!(
                        "{file} {} `{n}`",
                        if inputs { "input" } else { "output" }
                    ));
                }
            }
        };
        need(
            &self.encoder,
            ENCODER_FILE,
            true,
            vec!["input_features".into()],
        );
        need(
            &self.encoder,
            ENCODER_FILE,
            false,
            vec!["last_hidden_state".into()],
        );
        need(
            &self.decoder,
            DECODER_FILE,
            true,
            vec!["input_ids".into(), "encoder_hidden_states".into()],
        );
        let mut present = vec!["logits".to_string()];
        let mut past = vec!["input_ids".to_string()];
        let mut present_past = vec!["logits".to_string()];
        for l in 0..self.n_layers {
            for kind in ["decoder", "encoder"] {
                for kv in ["key", "value"] {
                    present.push(format!("present.{l}.{kind}.{kv}"));
                    past.push(format!("past_key_values.{l}.{kind}.{kv}"));
                }
            }
            present_past.push(format!("present.{l}.decoder.key"));
            present_past.push(format!("present.{l}.decoder.value"));
        }
        need(&self.decoder, DECODER_FILE, false, present);
        need(&self.decoder_with_past, DECODER_PAST_FILE, true, past);
        need(
            &self.decoder_with_past,
            DECODER_PAST_FILE,
            false,
            present_past,
        );
        if self.n_layers == 0 {
            missing.push(format!("{DECODER_FILE} outputs `present.N.decoder.key`"));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(folder_err(
                &self.dir,
                format!("graphs lack {}", missing.join(", ")),
            ))
        }
    }
}
