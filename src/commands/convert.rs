use std::path::Path;

use anyhow::{bail, Result};

use super::Outcome;
use crate::fsutil::Publish;

/// `quantbench convert CT2_DIR OUT_DIR`. An existing OUT_DIR is replaced only when quantbench made it.
pub fn run(ct2_dir: &Path, out_dir: &Path) -> Result<Outcome> {
    if out_dir.exists() && !crate::assets::entry::is_quantbench_output(out_dir) {
        bail!(
            "{}: already exists and is not a quantbench output; refusing to replace it",
            out_dir.display()
        );
    }
    let key = format!("converted from {}", ct2_dir.display());
    crate::models::whisper::export::convert(ct2_dir, out_dir, Some(&key), Publish::Replace)?;
    println!("{}", out_dir.display());
    Ok(Outcome::Done)
}
