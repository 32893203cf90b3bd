//! Measurement: latency statistics and accuracy metrics.

pub mod caption;
pub mod normalizer;
pub mod segments;
pub mod stats;
pub mod vqa;
pub mod wer;
