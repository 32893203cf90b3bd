use std::path::PathBuf;

use anyhow::{anyhow, Context as _, Result};

use super::Outcome;
use crate::config::Variant;
use crate::engine::{self, Context, Event};
use crate::models::whisper::{Pipeline, Task};

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

/// `quantbench transcribe`: prints FILE<TAB>TEXT per file; a detected language goes to stderr.
pub fn run(
    ctx: &Context,
    model: &str,
    variant: Variant,
    language: Language,
    task: Task,
    files: &[PathBuf],
    sink: &mut dyn FnMut(Event),
) -> Result<Outcome> {
    // The model opens after the first file decodes, so a bad input fails fast.
    let mut pipeline: Option<Pipeline> = None;
    for f in files {
        let audio = crate::data::audio::load_16k_within(f, &ctx.audio_limits)?;
        if pipeline.is_none() {
            let p = engine::open_variant(model, variant, &Default::default(), ctx, sink)?.pipeline;
            // Refuse what the model cannot do before any decoding.
            let check = match &language {
                Language::Code(code) => code.as_str(),
                Language::Detect => "en",
            };
            p.model
                .tokens
                .prompt_for(check, task)
                .map_err(|e| anyhow!("{model}: {e}"))?;
            pipeline = Some(p);
        }
        let p = pipeline.as_mut().expect("opened above");
        let code = match &language {
            Language::Code(code) => code.clone(),
            Language::Detect if p.model.tokens.multilingual => {
                let probs = p
                    .detect_language(&audio.samples)
                    .with_context(|| f.display().to_string())?;
                let top: Vec<String> = probs
                    .iter()
                    .take(3)
                    .map(|l| format!("{} {:.3}", l.code, l.probability))
                    .collect();
                eprintln!("{}: language {}", f.display(), top.join(", "));
                probs
                    .first()
                    .map(|l| l.code.clone())
                    .unwrap_or_else(|| "en".into())
            }
            Language::Detect => "en".into(),
        };
        p.set_language(&code, task)
            .map_err(|e| anyhow!("{model}: {e}"))?;
        let t = p
            .transcribe(&audio.samples)
            .with_context(|| f.display().to_string())?;
        println!("{}\t{}", f.display(), t.text);
    }
    Ok(Outcome::Done)
}
