use std::path::Path;

use anyhow::Result;

use super::Outcome;

/// `quantbench convert CT2_DIR OUT_DIR`.
pub fn run(ct2_dir: &Path, out_dir: &Path) -> Result<Outcome> {
    crate::models::whisper::export::convert(ct2_dir, out_dir)?;
    println!("{}", out_dir.display());
    Ok(Outcome::Done)
}
