use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::Outcome;
use crate::engine::{self, Context, Event};

/// `quantbench caption`: prints FILE<TAB>CAPTION per image.
pub fn caption(
    ctx: &Context,
    model: &str,
    images: &[PathBuf],
    sink: &mut dyn FnMut(Event),
) -> Result<Outcome> {
    // Every image decodes before the model opens, so a bad input fails fast.
    let decoded = images
        .iter()
        .map(|f| crate::data::image::load_rgb(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut pipeline = engine::open_blip(model, ctx, sink)?;
    for (f, image) in images.iter().zip(&decoded) {
        let c = pipeline
            .caption(image)
            .with_context(|| f.display().to_string())?;
        println!("{}\t{}", f.display(), c.text);
    }
    Ok(Outcome::Done)
}

/// `quantbench vqa`: prints the answer.
pub fn vqa(
    ctx: &Context,
    model: &str,
    image: &Path,
    question: &str,
    sink: &mut dyn FnMut(Event),
) -> Result<Outcome> {
    anyhow::ensure!(!question.trim().is_empty(), "the question is empty");
    let decoded = crate::data::image::load_rgb(image)?;
    let mut pipeline = engine::open_blip(model, ctx, sink)?;
    let a = pipeline
        .answer(&decoded, question)
        .with_context(|| image.display().to_string())?;
    if a.question_truncated {
        eprintln!(
            "warning: the question is longer than the model's {} tokens; it was cut",
            pipeline.model.config.max_question_tokens
        );
    }
    println!("{}", a.text);
    Ok(Outcome::Done)
}
