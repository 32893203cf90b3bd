//! The engine: runs transcription, evaluation and whole experiments, and reports what it does as typed
//! events. It never prints; faces (CLI progress lines, the TUI) render the events.
//!
//! A model family is a [`Workload`]; one loop ([`interleave`]) measures any of them, and one set of
//! [`verdicts`] judges every row.

mod blip;
mod calibrate;
pub mod control;
mod environment;
mod events;
pub mod interleave;
mod longform;
mod run;
mod variants;
pub mod verdicts;
mod whisper;
pub mod workload;

pub use crate::models::blip::builtin::BUILTIN_BLIP;
pub use blip::{
    blip_dir, dataset_manifest, evaluate_captions, evaluate_vqa, export_builtin, open_blip,
    BlipWorkload,
};
pub use calibrate::{CalibrationSet, DEFAULT_CALIBRATION};
pub use environment::environment;
pub use events::{Event, Stage, Task};
pub use run::{
    experiment_result, is_cancelled, run_experiment, Cancel, Cancelled, Context, Provenance,
};
pub use variants::{open_blip_variant, open_variant, quantize, Opened, QuantSetup, BASELINE};
pub use whisper::{evaluate, WhisperWorkload};
pub use workload::Workload;
