use std::path::PathBuf;

use anyhow::{Context as _, Result};

use super::Outcome;
use crate::config::Variant;
use crate::engine::{self, Context, Event};

/// `quantbench transcribe`: prints FILE<TAB>TEXT per file.
pub fn run(
    ctx: &Context,
    model: &str,
    variant: Variant,
    files: &[PathBuf],
    sink: &mut dyn FnMut(Event),
) -> Result<Outcome> {
    // The model opens after the first file decodes, so a bad input fails fast.
    let mut pipeline = None;
    for f in files {
        let audio = crate::data::audio::load_16k_within(f, &ctx.audio_limits)?;
        if pipeline.is_none() {
            pipeline = Some(
                engine::open_variant(model, variant, &Default::default(), ctx, sink)?.pipeline,
            );
        }
        let p = pipeline.as_mut().expect("opened above");
        let t = p
            .transcribe(&audio.samples)
            .with_context(|| f.display().to_string())?;
        println!("{}\t{}", f.display(), t.text);
    }
    Ok(Outcome::Done)
}
