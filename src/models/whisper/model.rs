//! A Whisper model folder in optimum's ONNX layout, opened as three ORT sessions. Only file names and tensor
//! names are relied on (as optimum writes them), never how the graphs were built.

use std::path::{Path, PathBuf};

use ort::session::Session;

use super::tokens::SpecialTokens;

pub const ENCODER_FILE: &str = "encoder_model.onnx";
pub const DECODER_FILE: &str = "decoder_model.onnx";
pub const DECODER_PAST_FILE: &str = "decoder_with_past_model.onnx";
pub const DECODER_MERGED_FILE: &str = "decoder_model_merged.onnx";
/// The files our converter writes (optimum's split layout).
pub const PART_FILES: [&str; 3] = [ENCODER_FILE, DECODER_FILE, DECODER_PAST_FILE];
/// Every graph file a model folder may hold.
pub const ALL_GRAPH_FILES: [&str; 4] = [
    ENCODER_FILE,
    DECODER_FILE,
    DECODER_PAST_FILE,
    DECODER_MERGED_FILE,
];

/// The ONNX graph files present in a model folder, in a fixed order.
pub fn graph_files(dir: &Path) -> Vec<&'static str> {
    ALL_GRAPH_FILES
        .iter()
        .copied()
        .filter(|f| dir.join(f).is_file())
        .collect()
}

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
    pub d_model: usize,
    pub decoder_heads: usize,
}

/// Bounds on config.json's sizes, well beyond every Whisper (large-v3: 128 mels, vocab 51 866, d_model
/// 1280, 20 heads, 448 positions); the graphs' own shapes are checked against them at open.
const N_MELS: std::ops::RangeInclusive<u64> = 1..=512;
const MAX_VOCAB: u64 = 1 << 20;
const MAX_POSITIONS: u64 = 1 << 16;
const MAX_D_MODEL: u64 = 1 << 14;
const MAX_HEADS: u64 = 1 << 10;

impl WhisperConfig {
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let read = |name: &str| -> Result<Option<String>, ModelError> {
            let p = dir.join(name);
            if !p.exists() {
                return Ok(None);
            }
            std::fs::read_to_string(&p)
                .map(Some)
                .map_err(|e| folder_err(&p, format!("cannot read: {e}")))
        };
        let config_path = dir.join("config.json");
        let config = read("config.json")?.ok_or_else(|| {
            folder_err(
                &config_path,
                "missing (every optimum Whisper export has one)",
            )
        })?;
        let generation_path = dir.join("generation_config.json");
        let generation = read("generation_config.json")?;
        let generation = generation
            .as_deref()
            .map(|text| {
                serde_json::from_str::<serde_json::Value>(text)
                    .map_err(|e| folder_err(&generation_path, format!("not valid JSON: {e}")))
            })
            .transpose()?
            .unwrap_or_default();
        Self::parse(&config, &generation).map_err(|what| folder_err(&config_path, what))
    }

    /// config.json's text, with generation_config.json's values as the fallback for token lists.
    pub fn parse(config: &str, generation: &serde_json::Value) -> Result<Self, String> {
        let config: serde_json::Value =
            serde_json::from_str(config).map_err(|e| format!("not valid JSON: {e}"))?;
        if !config.is_object() {
            return Err("not a JSON object".into());
        }
        let num = |key: &str,
                   default: u64,
                   range: std::ops::RangeInclusive<u64>|
         -> Result<usize, String> {
            let v = match config.get(key) {
                None | Some(serde_json::Value::Null) => default,
                Some(v) => v
                    .as_u64()
                    .ok_or_else(|| format!("`{key}` must be a whole number, got {v}"))?,
            };
            if v != default && !range.contains(&v) {
                return Err(format!(
                    "`{key}` is {v}, outside {}..={}",
                    range.start(),
                    range.end()
                ));
            }
            usize::try_from(v).map_err(|_| format!("`{key}` is {v}, too large"))
        };
        let vocab_size = num("vocab_size", 0, 1..=MAX_VOCAB)?;
        let ids = |key: &str| -> Result<Vec<i64>, String> {
            let Some(v) = config.get(key).or_else(|| generation.get(key)) else {
                return Ok(Vec::new());
            };
            let list = v
                .as_array()
                .ok_or_else(|| format!("`{key}` must be a list of token ids"))?;
            list.iter()
                .map(|x| {
                    x.as_i64()
                        .filter(|&id| {
                            id >= 0 && (vocab_size == 0 || (id as u64) < vocab_size as u64)
                        })
                        .ok_or_else(|| {
                            format!("`{key}` holds {x}, not a token id of the vocabulary")
                        })
                })
                .collect()
        };
        let d_model = num("d_model", 0, 1..=MAX_D_MODEL)?;
        let decoder_heads = num("decoder_attention_heads", 0, 1..=MAX_HEADS)?;
        if d_model > 0 && decoder_heads > 0 && d_model % decoder_heads != 0 {
            return Err(format!(
                "`decoder_attention_heads` {decoder_heads} does not divide `d_model` {d_model}"
            ));
        }
        Ok(WhisperConfig {
            n_mels: num("num_mel_bins", 80, N_MELS)?,
            vocab_size,
            suppress_tokens: ids("suppress_tokens")?,
            begin_suppress_tokens: ids("begin_suppress_tokens")?,
            max_target_positions: num("max_target_positions", 448, 1..=MAX_POSITIONS)?,
            d_model,
            decoder_heads,
        })
    }
}

/// What a decoder graph takes and gives, read off its inputs and outputs (never off how it was built).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderIo {
    pub encoder_states: bool,
    pub use_cache_branch: bool,
    pub past_self: bool,
    pub past_cross: bool,
    pub present_cross: bool,
}

impl DecoderIo {
    fn of(s: &Session) -> Self {
        let input = |pred: &dyn Fn(&str) -> bool| s.inputs().iter().any(|o| pred(o.name()));
        DecoderIo {
            encoder_states: input(&|n| n == "encoder_hidden_states"),
            use_cache_branch: input(&|n| n == "use_cache_branch"),
            past_self: input(&|n| n.starts_with("past_key_values.") && n.contains(".decoder.")),
            past_cross: input(&|n| n.starts_with("past_key_values.") && n.contains(".encoder.")),
            present_cross: s
                .outputs()
                .iter()
                .any(|o| o.name().starts_with("present.") && o.name().contains(".encoder.")),
        }
    }
}

pub struct WhisperModel {
    pub dir: PathBuf,
    pub config: WhisperConfig,
    pub tokenizer: tokenizers::Tokenizer,
    pub tokens: SpecialTokens,
    pub encoder: Session,
    /// Runs the prompt (and, when `decoder_with_past` is absent, every later step too).
    pub decoder: Session,
    pub decoder_file: &'static str,
    /// optimum's split layout: the graph for one token at a time with the cache.
    pub decoder_with_past: Option<Session>,
    pub first_io: DecoderIo,
    pub step_io: DecoderIo,
    pub n_layers: usize,
    /// Decoder attention heads and head size (shape of an empty cache on the first step of a single graph).
    pub kv_heads: usize,
    pub kv_head_dim: usize,
    pub threads: usize,
}

impl WhisperModel {
    /// Opens a folder in optimum's layout: `encoder_model.onnx` plus either `decoder_model.onnx` and
    /// `decoder_with_past_model.onnx`, or one decoder for every step (`decoder_model_merged.onnx` with
    /// `use_cache_branch`, or a `decoder_model.onnx` that takes the past keys/values).
    pub fn open(dir: &Path, threads: usize) -> Result<Self, ModelError> {
        let layout = format!(
            "expected optimum's layout: {ENCODER_FILE} with {DECODER_FILE} + {DECODER_PAST_FILE}, or {DECODER_MERGED_FILE}"
        );
        for f in [ENCODER_FILE, "tokenizer.json"] {
            if !dir.join(f).is_file() {
                return Err(folder_err(
                    dir,
                    format!("not a Whisper model folder: {f} is missing ({layout})"),
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

        let open = |f: &str| crate::runtime::session(&dir.join(f), threads);
        let split_decoder = if dir.join(DECODER_FILE).is_file() {
            let d = open(DECODER_FILE)?;
            if DecoderIo::of(&d).past_self {
                None
            } else {
                Some(d)
            }
        } else {
            None
        };
        let (decoder, decoder_file, decoder_with_past) = match split_decoder {
            Some(d) if dir.join(DECODER_PAST_FILE).is_file() => {
                (d, DECODER_FILE, Some(open(DECODER_PAST_FILE)?))
            }
            _ if dir.join(DECODER_MERGED_FILE).is_file() => {
                (open(DECODER_MERGED_FILE)?, DECODER_MERGED_FILE, None)
            }
            Some(_) => {
                return Err(folder_err(
                    dir,
                    format!("{DECODER_PAST_FILE} is missing ({layout})"),
                ))
            }
            None if dir.join(DECODER_FILE).is_file() => (open(DECODER_FILE)?, DECODER_FILE, None),
            None => return Err(folder_err(dir, format!("no decoder graph ({layout})"))),
        };
        let first_io = DecoderIo::of(&decoder);
        let step_io = decoder_with_past.as_ref().map_or(first_io, DecoderIo::of);
        let n_layers = decoder
            .outputs()
            .iter()
            .filter(|o| o.name().starts_with("present.") && o.name().ends_with(".decoder.key"))
            .count();
        let (kv_heads, kv_head_dim) = cache_shape(&decoder, &config);
        check_sizes(dir, &config, &encoder, &decoder, decoder_file)?;
        let model = WhisperModel {
            dir: dir.to_path_buf(),
            config,
            tokenizer,
            tokens,
            encoder,
            decoder,
            decoder_file,
            decoder_with_past,
            first_io,
            step_io,
            n_layers,
            kv_heads,
            kv_head_dim,
            threads,
        };
        model.check_io()?;
        Ok(model)
    }

    /// Names every tensor the pipeline relies on that a graph lacks, and any input it would not know how
    /// to feed.
    fn check_io(&self) -> Result<(), ModelError> {
        let mut problems = Vec::new();
        use crate::runtime::{absent, io_names, Side};
        let names = |s: &Session, inputs: bool| -> Vec<String> {
            io_names(s, if inputs { Side::Inputs } else { Side::Outputs })
        };
        let need = |problems: &mut Vec<String>,
                    s: &Session,
                    file: &str,
                    inputs: bool,
                    wanted: Vec<String>| {
            let side = if inputs { Side::Inputs } else { Side::Outputs };
            for n in absent(s, side, &wanted) {
                problems.push(format!("{file} lacks {} `{n}`", side.noun()));
            }
        };
        need(
            &mut problems,
            &self.encoder,
            ENCODER_FILE,
            true,
            vec!["input_features".into()],
        );
        need(
            &mut problems,
            &self.encoder,
            ENCODER_FILE,
            false,
            vec!["last_hidden_state".into()],
        );
        let kv = |prefix: &str, kind: &str| -> Vec<String> {
            (0..self.n_layers)
                .flat_map(|l| ["key", "value"].map(|x| format!("{prefix}.{l}.{kind}.{x}")))
                .collect()
        };
        let mut first_out = vec!["logits".to_string()];
        first_out.extend(kv("present", "decoder"));
        need(
            &mut problems,
            &self.decoder,
            self.decoder_file,
            true,
            vec!["input_ids".into(), "encoder_hidden_states".into()],
        );
        need(
            &mut problems,
            &self.decoder,
            self.decoder_file,
            false,
            first_out.clone(),
        );
        let (step, step_file) = match &self.decoder_with_past {
            Some(s) => (s, DECODER_PAST_FILE),
            None => (&self.decoder, self.decoder_file),
        };
        let mut step_in = vec!["input_ids".to_string()];
        step_in.extend(kv("past_key_values", "decoder"));
        need(&mut problems, step, step_file, true, step_in);
        need(&mut problems, step, step_file, false, first_out);
        let cross_source =
            self.step_io.encoder_states || (self.step_io.past_cross && self.first_io.present_cross);
        if !cross_source {
            problems.push(format!(
                "{step_file} has neither `encoder_hidden_states` nor cross-attention past keys/values fed from {}",
                self.decoder_file
            ));
        }
        if self.step_io.past_cross {
            if self.decoder_with_past.is_some() || self.first_io.present_cross {
                need(
                    &mut problems,
                    &self.decoder,
                    self.decoder_file,
                    false,
                    kv("present", "encoder"),
                );
            }
            need(
                &mut problems,
                step,
                step_file,
                true,
                kv("past_key_values", "encoder"),
            );
        }
        for (s, file) in [(&self.decoder, self.decoder_file), (step, step_file)] {
            for n in names(s, true) {
                let known = n == "input_ids"
                    || n == "encoder_hidden_states"
                    || n == "use_cache_branch"
                    || n.starts_with("past_key_values.");
                if !known {
                    problems.push(format!(
                        "{file} has input `{n}` that quantbench does not know how to feed"
                    ));
                }
            }
        }
        if self.n_layers == 0 {
            problems.push(format!(
                "{} has no `present.N.decoder.key` outputs",
                self.decoder_file
            ));
        }
        problems.dedup();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(folder_err(&self.dir, problems.join("; ")))
        }
    }
}

/// (heads, head size) of the decoder's self-attention cache: from a past input's static shape when it
/// has one, else from config.json.
/// config.json's sizes against the shapes the graphs fix.
fn check_sizes(
    dir: &Path,
    config: &WhisperConfig,
    encoder: &Session,
    decoder: &Session,
    decoder_file: &str,
) -> Result<(), ModelError> {
    use crate::runtime::{fixed_dim, Side};
    let mismatch = |key: &str, value: usize, file: &str, tensor: &str, dim: i64| {
        folder_err(
            &dir.join("config.json"),
            format!("`{key}` is {value}, but {file}'s `{tensor}` has {dim}"),
        )
    };
    if let Some(d) = fixed_dim(encoder, Side::Inputs, "input_features", 1) {
        if d as usize != config.n_mels {
            return Err(mismatch(
                "num_mel_bins",
                config.n_mels,
                ENCODER_FILE,
                "input_features",
                d,
            ));
        }
    }
    if let Some(d) = fixed_dim(decoder, Side::Outputs, "logits", usize::MAX) {
        if config.vocab_size > 0 && d as usize != config.vocab_size {
            return Err(mismatch(
                "vocab_size",
                config.vocab_size,
                decoder_file,
                "logits",
                d,
            ));
        }
    }
    Ok(())
}

fn cache_shape(decoder: &Session, config: &WhisperConfig) -> (usize, usize) {
    let from_graph = decoder
        .inputs()
        .iter()
        .chain(decoder.outputs())
        .filter(|o| o.name().ends_with(".decoder.key"))
        .find_map(|o| match o.dtype() {
            ort::value::ValueType::Tensor { shape, .. }
                if shape.len() == 4 && shape[1] > 0 && shape[3] > 0 =>
            {
                Some((shape[1] as usize, shape[3] as usize))
            }
            _ => None,
        });
    from_graph.unwrap_or((
        config.decoder_heads,
        config.d_model / config.decoder_heads.max(1),
    ))
}
