use std::path::Path;

use anyhow::{Context as _, Result};

use super::Outcome;
use crate::cli::Cli;
use crate::config::Experiment;
use crate::engine::{self, Event};

/// `quantbench report`: the experiment, its markdown + JSON report, and a one-screen summary on stdout.
pub fn run(cli: &Cli, config: &Path, out: &Path, sink: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let exp = Experiment::load(config)?;
    let ctx = super::context(cli, Some(exp.threads()), exp.runtime.ort_library.clone());
    let result = engine::run_experiment(&exp, config, &ctx, sink)?;
    let paths = crate::report::write_report(&result, out)
        .with_context(|| format!("{}: cannot write the report", out.display()))?;
    print!("{}", crate::report::summary(&result));
    for p in paths {
        println!("{}", p.display());
    }
    let failures = result.failures();
    if failures.is_empty() {
        Ok(Outcome::Done)
    } else {
        Ok(Outcome::ThresholdFailed(failures))
    }
}
