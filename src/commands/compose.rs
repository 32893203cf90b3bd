use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::Outcome;
use crate::data::audio::AudioLimits;
use crate::data::recordings::{self, ClipSpan};

#[derive(Serialize)]
struct Boundaries<'a> {
    name: &'a str,
    duration_s: f64,
    clips: Vec<Clip<'a>>,
}

#[derive(Serialize)]
struct Clip<'a> {
    audio: &'a str,
    start: f64,
    end: f64,
    text: &'a str,
}

#[derive(Serialize)]
struct ManifestLine<'a> {
    audio: String,
    text: String,
    source: String,
    duration_s: f64,
    name: &'a str,
}

/// `quantbench compose SPEC OUT_DIR`: each recording of the spec as `NAME.wav` (16 kHz, 16-bit) with
/// `NAME.json` (where each clip lies) and a `manifest.jsonl` over them; the folder is published whole.
pub fn run(spec: &Path, out_dir: &Path, limits: &AudioLimits) -> Result<Outcome> {
    let specs = recordings::load_spec(spec)?;
    crate::fsutil::write_dir_atomic(out_dir, |dir| {
        let mut manifest = String::new();
        for s in &specs {
            let r = recordings::compose(s, limits)?;
            let wav = format!("{}.wav", r.name);
            recordings::write_wav(&r, &dir.join(&wav)).with_context(|| wav.clone())?;
            let bounds = Boundaries {
                name: &r.name,
                duration_s: r.duration_s(),
                clips: r.clips.iter().map(clip).collect(),
            };
            let json = serde_json::to_string_pretty(&bounds)? + "\n";
            std::fs::write(dir.join(format!("{}.json", r.name)), json)?;
            let line = ManifestLine {
                audio: wav,
                text: r.text(),
                source: format!("composed by quantbench compose from {}", spec.display()),
                duration_s: r.duration_s(),
                name: &r.name,
            };
            manifest.push_str(&serde_json::to_string(&line)?);
            manifest.push('\n');
            eprintln!(
                "{}: {:.1} s, {} clips",
                r.name,
                r.duration_s(),
                r.clips.len()
            );
        }
        std::fs::write(dir.join("manifest.jsonl"), manifest)?;
        Ok(())
    })?;
    println!("{}", out_dir.display());
    Ok(Outcome::Done)
}

fn clip(c: &ClipSpan) -> Clip<'_> {
    Clip {
        audio: &c.audio_rel,
        start: c.start,
        end: c.end,
        text: &c.text,
    }
}
