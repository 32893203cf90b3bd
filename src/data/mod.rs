//! Inputs: audio files and JSONL manifests.

pub mod audio;
pub mod manifest;
