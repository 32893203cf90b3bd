//! quantbench: take Whisper and BLIP to INT8 and measure what it costs and gains.
//!
//! Data path: assets → models → measure → engine → report (faces: the CLI and, later, the TUI).

pub mod assets;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod engine;
pub mod errors;
pub mod fsutil;
pub mod measure;
pub mod models;
pub mod onnx;
pub mod quant;
pub mod report;
pub mod results;
pub mod rng;
pub mod runtime;
pub mod tui;
