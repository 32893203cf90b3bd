//! BLIP (image captioning and visual question answering) over the seed's three-graph layout: image
//! preprocessing, the model folder and its checks, greedy generation. Still to come: the exporter (the
//! project's trained model and a blip-vqa-base-sized one) and the INT8 recipe.

pub mod builtin;
pub mod export;
mod generate;
pub mod model;
pub mod preprocess;
pub mod tokenizer;

pub use generate::{BlipPipeline, GenerateError, Generated};
pub use model::{BlipConfig, BlipError, BlipModel};
