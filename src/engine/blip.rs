//! BLIP models for the faces: a model folder (the seed's three-graph layout) opened for captioning and
//! question answering. Built-in BLIP models come with the exporter.

use std::path::Path;

use anyhow::{Context as _, Result};

use super::{Context, Event};
use crate::models::blip::{BlipModel, BlipPipeline};

pub fn open_blip(spec: &str, ctx: &Context, sink: &mut dyn FnMut(Event)) -> Result<BlipPipeline> {
    ctx.init_runtime(sink)?;
    let dir = Path::new(spec);
    anyhow::ensure!(
        dir.is_dir(),
        "unknown BLIP model `{spec}`: give a folder with vision_model.onnx, text_encoder.onnx, text_decoder_with_past.onnx and tokenizer.json (built-in BLIP models are not available yet)"
    );
    let model = BlipModel::open(dir, ctx.threads).with_context(|| format!("BLIP model {spec}"))?;
    Ok(BlipPipeline::new(model))
}
