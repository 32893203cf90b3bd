use std::path::Path;

use anyhow::{Context as _, Result};

use super::Outcome;
use crate::cli::GateArgs;
use crate::results::gate::{gate, Gate};
use crate::results::ExperimentResult;

/// Reads a JSON report, naming the file in any error.
pub fn read_report(path: &Path) -> Result<ExperimentResult> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the report", path.display()))?;
    ExperimentResult::from_json(&text).with_context(|| path.display().to_string())
}

/// Writes the gate's CI files, then gives its outcome: `Done`, `ThresholdFailed`, or an error for a
/// report that cannot be gated.
pub fn apply(result: &ExperimentResult, source: &Path, args: &GateArgs) -> Result<Outcome> {
    for (path, text) in [
        (&args.junit, crate::report::junit(result)),
        (&args.summary, crate::report::verdict_table(result)),
    ] {
        if let Some(path) = path {
            crate::fsutil::write_atomic(path, text.as_bytes())
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
    }
    match gate(result, args.allow_incomplete).with_context(|| source.display().to_string())? {
        Gate::Pass => {
            println!(
                "gate: pass ({} rows, {} verdicts)",
                result.rows.len(),
                result.rows.iter().map(|r| r.verdicts.len()).sum::<usize>()
            );
            Ok(Outcome::Done)
        }
        Gate::Fail(failures) => Ok(Outcome::ThresholdFailed(failures)),
    }
}

/// `quantbench gate REPORT.json`.
pub fn run(report: &Path, args: &GateArgs) -> Result<Outcome> {
    apply(&read_report(report)?, report, args)
}
