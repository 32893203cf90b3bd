//! BLIP (image captioning and visual question answering) over the seed's three-graph layout: image
//! preprocessing, the model folder and its checks, greedy generation, the exporter and the built-in models
//! (the project's trained blip-easyvqa and the blip-vqa-base-sized blip-base-shape).

pub mod builtin;
pub mod export;
mod generate;
pub mod model;
pub mod preprocess;
pub mod tokenizer;

pub use generate::{BlipPipeline, GenerateError, Generated};
pub use model::{BlipConfig, BlipError, BlipModel};
