//! The engine: runs transcription, evaluation, latency series and whole experiments, and reports what it
//! does as typed events. It never prints; faces (CLI progress lines, the TUI) render the events.

mod blip;
mod calibrate;
mod environment;
mod events;
mod run;
mod variants;

pub use crate::models::blip::builtin::BUILTIN_BLIP;
pub use blip::{blip_dir, evaluate_captions, evaluate_vqa, export_builtin, open_blip};
pub use calibrate::{CalibrationSet, DEFAULT_CALIBRATION};
pub use environment::environment;
pub use events::{Event, Stage, Task};
pub use run::{
    dataset_sha256, evaluate, experiment_result, run_experiment, Cancel, Cancelled, Context,
};
pub use variants::{open_blip_variant, open_variant, quantize, Opened, QuantSetup, BASELINE};
