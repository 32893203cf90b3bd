use std::path::Path;

use anyhow::{Context as _, Result};

use super::gate::read_report;
use super::Outcome;
use crate::results::compare::compare;

pub struct Args<'a> {
    pub old: &'a Path,
    pub new: &'a Path,
    pub md: Option<&'a Path>,
    pub noise: f64,
    pub fail_on_regression: bool,
    pub force: bool,
}

/// `quantbench compare OLD.json NEW.json`: prints the comparison (markdown), optionally writes it.
pub fn run(a: Args) -> Result<Outcome> {
    let (old, new) = (read_report(a.old)?, read_report(a.new)?);
    let c = compare(&old, &new, a.noise, a.force);
    let md = crate::report::comparison_markdown(
        &c,
        &a.old.display().to_string(),
        &a.new.display().to_string(),
        a.noise,
    );
    print!("{md}");
    if let Some(path) = a.md {
        crate::fsutil::write_atomic(path, md.as_bytes())
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    for e in &c.environment {
        eprintln!("warning: environments differ: {e}");
    }
    for r in &c.refused {
        eprintln!(
            "warning: {} {} not compared: {} (--force compares it)",
            r.model, r.variant, r.reason
        );
    }
    let regressions = c.regressions();
    if a.fail_on_regression && !regressions.is_empty() {
        return Ok(Outcome::Regressed(regressions));
    }
    Ok(Outcome::Done)
}
