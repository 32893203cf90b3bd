use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};

use super::Outcome;
use crate::config::Variant;
use crate::engine::{self, Context, Event};
use crate::models::whisper::{LanguageProbability, LongFormOptions, Pipeline, Segment, Task};
use crate::report::{render_transcript, Transcript, TranscriptFormat};

/// Audio up to this long is one window: decoded without timestamps, as before long-form decoding.
const ONE_WINDOW_SECONDS: f64 = 30.0;

/// `--language`: a code, or detected per file.
#[derive(Debug, Clone, PartialEq)]
pub enum Language {
    Detect,
    Code(String),
}

impl Language {
    pub fn parse(text: &str) -> Self {
        match text {
            "auto" => Language::Detect,
            code => Language::Code(code.to_string()),
        }
    }
}

/// What `quantbench transcribe` was asked.
pub struct Request<'a> {
    pub model: &'a str,
    pub variant: Variant,
    pub language: Language,
    pub task: Task,
    /// None: print FILE<TAB>TEXT.
    pub format: Option<TranscriptFormat>,
    pub output_dir: Option<&'a Path>,
    pub long_form: LongFormOptions,
    pub files: &'a [PathBuf],
}

/// `quantbench transcribe`: FILE<TAB>TEXT per file on stdout, or a transcript file per input with
/// `--format`; a detected language goes to stderr. Audio over 30 s, and any audio with a timestamped
/// format, is decoded long-form (timestamps, seeking, previous text as prompt, temperature fallback).
pub fn run(ctx: &Context, req: &Request, sink: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let outputs = output_paths(req)?;
    // The model opens after the first file decodes, so a bad input fails fast.
    let mut pipeline: Option<Pipeline> = None;
    for (i, f) in req.files.iter().enumerate() {
        let audio = crate::data::audio::load_16k_within(f, &ctx.audio_limits)?;
        if pipeline.is_none() {
            pipeline = Some(open(ctx, req, sink)?);
        }
        let p = pipeline.as_mut().expect("opened above");
        let (code, probabilities) = language_of(p, req, f, &audio.samples)?;
        p.set_language(&code, req.task)
            .map_err(|e| anyhow!("{}: {e}", req.model))?;
        let long = audio.duration_s() > ONE_WINDOW_SECONDS
            || req.format.is_some_and(|f| f != TranscriptFormat::Txt);
        let segments = if long {
            let mut show = |s: &Segment| {
                if req.format.is_some() {
                    eprintln!("[{:.2} → {:.2}]{}", s.start, s.end, s.text);
                }
            };
            let t = p
                .transcribe_long(&audio.samples, &req.long_form, &mut show)
                .with_context(|| f.display().to_string())?;
            t.segments
        } else {
            let t = p
                .transcribe(&audio.samples)
                .with_context(|| f.display().to_string())?;
            vec![whole_clip(audio.duration_s(), t.text)]
        };
        let transcript = Transcript {
            language: &code,
            language_probabilities: &probabilities,
            segments: &segments,
        };
        match (req.format, &outputs) {
            (Some(format), Some(paths)) => {
                let text = render_transcript(format, &transcript);
                crate::fsutil::write_atomic(&paths[i], text.as_bytes())
                    .with_context(|| format!("writing {}", paths[i].display()))?;
                eprintln!("{}: wrote {}", f.display(), paths[i].display());
            }
            _ => {
                let text: String = segments.iter().map(|s| s.text.as_str()).collect();
                println!("{}\t{}", f.display(), text.trim());
            }
        }
    }
    Ok(Outcome::Done)
}

/// One output file per input, `<output dir>/<file stem>.<format>`; two inputs that would write the same
/// file are refused before anything is decoded.
fn output_paths(req: &Request) -> Result<Option<Vec<PathBuf>>> {
    let Some(format) = req.format else {
        return Ok(None);
    };
    let dir = req.output_dir.unwrap_or(Path::new("."));
    let mut seen = HashSet::new();
    let mut paths = Vec::with_capacity(req.files.len());
    for f in req.files {
        let stem = f
            .file_stem()
            .ok_or_else(|| anyhow!("{}: no file name to name its transcript after", f.display()))?;
        let path = dir.join(Path::new(stem).with_extension(format.extension()));
        if !seen.insert(path.clone()) {
            bail!(
                "{}: its transcript {} would overwrite another input's; transcribe them into separate --output-dir folders",
                f.display(),
                path.display()
            );
        }
        paths.push(path);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(Some(paths))
}

fn open(ctx: &Context, req: &Request, sink: &mut dyn FnMut(Event)) -> Result<Pipeline> {
    let p = engine::open_variant(req.model, req.variant, &Default::default(), ctx, sink)?.pipeline;
    // Refuse what the model cannot do before any decoding.
    let check = match &req.language {
        Language::Code(code) => code.as_str(),
        Language::Detect => "en",
    };
    p.model
        .tokens
        .prompt_for(check, req.task)
        .map_err(|e| anyhow!("{}: {e}", req.model))?;
    Ok(p)
}

/// The language to decode in, and the detected probabilities (best first) when it was detected.
fn language_of(
    p: &mut Pipeline,
    req: &Request,
    file: &Path,
    samples: &[f32],
) -> Result<(String, Vec<LanguageProbability>)> {
    match &req.language {
        Language::Code(code) => Ok((code.clone(), Vec::new())),
        Language::Detect if p.model.tokens.multilingual => {
            let probs = p
                .detect_language(samples)
                .with_context(|| file.display().to_string())?;
            let top: Vec<String> = probs
                .iter()
                .take(3)
                .map(|l| format!("{} {:.3}", l.code, l.probability))
                .collect();
            eprintln!("{}: language {}", file.display(), top.join(", "));
            let code = probs
                .first()
                .map(|l| l.code.clone())
                .unwrap_or_else(|| "en".into());
            Ok((code, probs))
        }
        Language::Detect => Ok(("en".into(), Vec::new())),
    }
}

/// A one-window transcription as the single segment of a txt file.
fn whole_clip(duration: f64, text: String) -> Segment {
    Segment {
        start: 0.0,
        end: duration,
        text: format!(" {text}"),
        tokens: Vec::new(),
        avg_logprob: 0.0,
        no_speech_prob: 0.0,
        compression_ratio: 0.0,
        temperature: 0.0,
        seek: 0,
    }
}
