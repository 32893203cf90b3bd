//! Whisper: CTranslate2 reader and ONNX exporter, log-mel features, greedy decoding.

pub mod ct2;
pub mod decode;
pub mod export;
pub mod features;
pub mod longform;
pub mod model;
pub mod tokens;

pub use decode::{DecodeOptions, LanguageProbability, Pipeline, StepState, Transcription};
pub use longform::{LongFormOptions, LongTranscription, Segment};
pub use model::WhisperModel;
pub use tokens::Task;
