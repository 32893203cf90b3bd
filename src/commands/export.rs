use std::path::Path;

use anyhow::Result;

use super::Outcome;
use crate::engine::{self, Event};

/// `quantbench export NAME OUT_DIR`: a built-in BLIP's FP32 folder.
pub fn run(name: &str, out_dir: &Path, sink: &mut dyn FnMut(Event)) -> Result<Outcome> {
    engine::export_builtin(name, out_dir, sink)?;
    println!("{}", out_dir.display());
    Ok(Outcome::Done)
}
