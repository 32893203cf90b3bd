use std::io::IsTerminal;

use anyhow::Result;

use super::Outcome;
use crate::assets::Cache;
use crate::cli::Cli;
use crate::config::Experiment;

/// `quantbench` alone: the TUI, which needs a terminal on both ends.
pub fn run(cli: &Cli) -> Result<Outcome> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        anyhow::bail!(
            "the interactive TUI needs a terminal (stdin and stdout); for a headless run use `quantbench report --config {}` (see `quantbench --help`)",
            cli.config.display()
        );
    }
    let exp = Experiment::load(&cli.config)?;
    if let Some(lib) = &exp.runtime.ort_library {
        crate::runtime::check_configured_library(lib, cli.trust_library)
            .map_err(|e| anyhow::anyhow!("{}: [runtime] ort_library: {e}", cli.config.display()))?;
    }
    let threads = cli.threads.unwrap_or_else(|| exp.threads());
    crate::tui::run(crate::tui::Options {
        cache: Cache::new(cli.cache_dir.clone(), cli.wheelhouse.clone()),
        config_path: cli.config.clone(),
        provenance: crate::engine::Provenance::of(&cli.config),
        out_dir: cli.out.clone(),
        experiment: exp,
        threads,
        audio_limits: crate::data::audio::AudioLimits {
            max_seconds: cli.max_audio_seconds,
        },
    })?;
    Ok(Outcome::Done)
}
