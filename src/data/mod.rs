//! Inputs: audio files, images and JSONL manifests.

pub mod audio;
pub mod easy_vqa;
pub mod image;
pub mod manifest;
