//! `train-blip`: trains blip-easyvqa (a small BLIP: ViT, BERT-style text encoder and decoder with
//! cross-attention) on easy-VQA with burn, to answer its questions and caption its images, then writes it
//! through quantbench's own exporter into the three-graph layout every BLIP in quantbench uses.

mod data;
mod export;
mod model;
mod train;

use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    pub epochs: usize,
    pub images_per_batch: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub hidden: usize,
    pub vision_layers: usize,
    pub text_layers: usize,
    /// Stop after this many steps (for a quick look at speed); 0 = the whole schedule.
    pub max_steps: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            out: PathBuf::from("assets/blip-easyvqa"),
            epochs: 12,
            images_per_batch: 4,
            learning_rate: 5e-4,
            seed: 0,
            hidden: 96,
            vision_layers: 3,
            text_layers: 2,
            max_steps: 0,
        }
    }
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value"))
                .cloned()
        };
        match flag.as_str() {
            "--out" => o.out = PathBuf::from(value()?),
            "--epochs" => o.epochs = value()?.parse()?,
            "--images-per-batch" => o.images_per_batch = value()?.parse()?,
            "--lr" => o.learning_rate = value()?.parse()?,
            "--seed" => o.seed = value()?.parse()?,
            "--hidden" => o.hidden = value()?.parse()?,
            "--vision-layers" => o.vision_layers = value()?.parse()?,
            "--text-layers" => o.text_layers = value()?.parse()?,
            "--max-steps" => o.max_steps = value()?.parse()?,
            other => anyhow::bail!(
                "unknown option {other} (options: --out DIR --epochs N --images-per-batch N --lr X \
                 --seed N --hidden N --vision-layers N --text-layers N --max-steps N)"
            ),
        }
    }
    Ok(o)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = parse(&args)?;
    train::run(&options)
}
