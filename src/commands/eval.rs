use std::path::Path;

use anyhow::{Context as _, Result};

use super::Outcome;
use crate::config::Variant;
use crate::data::manifest::{kind_of, load_captions, load_speech, load_vqa, ManifestKind};
use crate::engine::{self, Context, Event};

pub struct Args<'a> {
    pub model: &'a str,
    pub variant: Variant,
    pub manifest: &'a Path,
    pub limit: usize,
    pub json: Option<&'a Path>,
}

fn write_json(path: Option<&Path>, value: &impl serde::Serialize) -> Result<()> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(value)? + "\n";
        crate::fsutil::write_atomic(path, text.as_bytes())
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(())
}

/// `quantbench eval`: accuracy and per-item latency on a speech, VQA or caption manifest.
pub fn run(ctx: &Context, a: Args, sink: &mut dyn FnMut(Event)) -> Result<Outcome> {
    // The manifest is validated before any model work.
    let kind = kind_of(a.manifest)?;
    let setup = engine::QuantSetup::default();
    match kind {
        ManifestKind::Speech => {
            load_speech(a.manifest)?;
            let mut opened = engine::open_variant(a.model, a.variant, &setup, ctx, sink)?;
            let (name, variant) = (opened.model.name.clone(), opened.variant.clone());
            let r = engine::evaluate(
                &mut opened.pipeline,
                (&name, &variant),
                a.manifest,
                a.limit,
                sink,
            )?;
            println!(
                "{name} {variant}: WER {:.2} %  CER {:.2} %  n {}  latency median {:.1} ms",
                r.wer * 100.0,
                r.cer * 100.0,
                r.n,
                r.latency_ms.median_ms
            );
            write_json(a.json, &r)?;
        }
        ManifestKind::Vqa => {
            drop(load_vqa(a.manifest)?);
            let mut opened = engine::open_blip_variant(a.model, a.variant, &setup, ctx, sink)?;
            let (name, variant) = (opened.model.name.clone(), opened.variant.clone());
            let r = engine::evaluate_vqa(
                &mut opened.pipeline,
                (&name, &variant),
                a.manifest,
                a.limit,
                sink,
            )?;
            let types: Vec<String> = r
                .accuracy_by_type
                .iter()
                .map(|(t, a)| format!("{t} {:.2} %", a * 100.0))
                .collect();
            println!(
                "{name} {variant}: VQA accuracy {:.2} %  ({})  n {}  latency median {:.1} ms",
                r.accuracy * 100.0,
                types.join(", "),
                r.n,
                r.latency_ms.median_ms
            );
            write_json(a.json, &r)?;
        }
        _ => {
            drop(load_captions(a.manifest)?);
            let mut opened = engine::open_blip_variant(a.model, a.variant, &setup, ctx, sink)?;
            let (name, variant) = (opened.model.name.clone(), opened.variant.clone());
            let r = engine::evaluate_captions(
                &mut opened.pipeline,
                (&name, &variant),
                a.manifest,
                a.limit,
                sink,
            )?;
            println!(
                "{name} {variant}: caption exact match {:.2} %  token F1 {:.2} %  n {}  latency median {:.1} ms",
                r.exact_match * 100.0,
                r.token_f1 * 100.0,
                r.n,
                r.latency_ms.median_ms
            );
            write_json(a.json, &r)?;
        }
    }
    Ok(Outcome::Done)
}
