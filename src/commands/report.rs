use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context as _, Result};

use super::Outcome;
use crate::cli::{Cli, GateArgs};
use crate::config::Experiment;
use crate::engine::{self, Cancel, Event, Provenance};

pub struct Args<'a> {
    pub config: &'a Path,
    pub out: &'a Path,
    pub gate: Option<&'a GateArgs>,
    pub check_repro: Option<&'a Path>,
}

/// SIGINT / SIGTERM stop the run after the current round or item (the partial report is then written); a
/// second signal ends the process at once.
fn stop_on_signals(cancel: &Cancel) {
    let cancel = cancel.clone();
    let signals = Arc::new(AtomicUsize::new(0));
    // Only one handler per process: a second `report` in the same process (tests) keeps the first.
    let _ = ctrlc::set_handler(move || {
        if signals.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("quantbench: stopped at once (second signal); no report written");
            std::process::exit(130);
        }
        eprintln!("quantbench: stopping after the current step; the finished rows are saved (again to stop at once)");
        cancel.cancel();
    });
}

/// `quantbench report`: the experiment, its markdown + JSON report, and a one-screen summary on stdout.
/// Interrupted, it writes the finished rows as an incomplete report and ends with exit 130.
pub fn run(cli: &Cli, a: Args, sink: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let exp = Experiment::load(a.config)?;
    let provenance = Provenance::of(a.config);
    let old = a.check_repro.map(super::gate::read_report).transpose()?;
    if let Some(lib) = &exp.runtime.ort_library {
        crate::runtime::check_configured_library(lib, cli.trust_library)
            .map_err(|e| anyhow::anyhow!("{}: [runtime] ort_library: {e}", a.config.display()))?;
    }
    let ctx = super::context(cli, Some(exp.threads()), exp.runtime.ort_library.clone());
    // Temp folders live in the cache root's folders (quantized/, each asset's) and in the report folder.
    let mut dirs = vec![a.out.to_path_buf(), ctx.cache.root.clone()];
    if let Ok(entries) = std::fs::read_dir(&ctx.cache.root) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for dir in dirs {
        let removed = crate::fsutil::sweep_leftovers(&dir);
        if removed > 0 {
            sink(Event::Note(format!(
                "removed {removed} temp files of an earlier run that was killed, in {}",
                dir.display()
            )));
        }
    }
    stop_on_signals(&ctx.cancel);
    let result = engine::run_experiment(&exp, &provenance, &ctx, sink)?;
    let paths = crate::report::write_report(&result, a.out)
        .with_context(|| format!("{}: cannot write the report", a.out.display()))?;
    print!("{}", crate::report::summary(&result));
    for p in &paths {
        println!("{}", p.display());
    }
    if !result.complete {
        eprintln!(
            "quantbench: interrupted during {}; partial report written (complete: false, {} rows)",
            result.interrupted.as_deref().unwrap_or("the run"),
            result.rows.len()
        );
        return Ok(Outcome::Interrupted);
    }
    if let Some(old) = &old {
        let diffs = crate::results::repro::differences(old, &result);
        if !diffs.is_empty() {
            return Ok(Outcome::NotReproduced(diffs));
        }
        println!(
            "reproduced: no difference outside latency from {}",
            a.check_repro
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    if let Some(gate) = a.gate {
        return super::gate::apply(&result, paths.last().map_or(a.out, |p| p.as_path()), gate);
    }
    let failures = result.failures();
    if failures.is_empty() {
        Ok(Outcome::Done)
    } else {
        Ok(Outcome::ThresholdFailed(failures))
    }
}
