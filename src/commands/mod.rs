//! One module per subcommand; each wires the engine to a face. `run` only dispatches.

mod caption;
mod convert;
mod eval;
mod export;
mod fetch;
mod progress;
mod quantize;
mod report;
mod sensitivity;
mod transcribe;
mod tui;

use anyhow::Result;

use crate::assets::Cache;
use crate::cli::{Cli, Command};
use crate::engine::{Context, Event};

pub use progress::Progress;

/// How a command ended, when it did not fail.
pub enum Outcome {
    Done,
    /// `report` wrote its files but a threshold failed: each failure, for a `threshold failed:` line.
    ThresholdFailed(Vec<String>),
}

pub use crate::errors::one_line;

/// The engine context from the global flags (`--threads` wins over the experiment's threads).
fn context(
    cli: &Cli,
    threads_from_config: Option<usize>,
    ort_library: Option<std::path::PathBuf>,
) -> Context {
    Context {
        cache: Cache::new(cli.cache_dir.clone(), cli.wheelhouse.clone()),
        ort_library,
        threads: cli
            .threads
            .or(threads_from_config)
            .unwrap_or_else(crate::runtime::default_threads),
        cancel: Default::default(),
    }
}

pub fn run(cli: Cli) -> Result<Outcome> {
    let mut progress = Progress::new();
    let mut sink = |e: Event| progress.event(e);
    let Some(command) = &cli.command else {
        return tui::run(&cli);
    };
    match command {
        Command::Fetch { names } => fetch::run(&context(&cli, None, None), names, &mut sink),
        Command::Convert { ct2_dir, out_dir } => convert::run(ct2_dir, out_dir),
        Command::Transcribe {
            model,
            variant,
            files,
        } => transcribe::run(
            &context(&cli, None, None),
            model,
            *variant,
            files,
            &mut sink,
        ),
        Command::Export { name, out_dir } => export::run(name, out_dir, &mut sink),
        Command::Caption { model, images } => {
            caption::caption(&context(&cli, None, None), model, images, &mut sink)
        }
        Command::Vqa {
            model,
            image,
            question,
        } => caption::vqa(
            &context(&cli, None, None),
            model,
            image,
            question,
            &mut sink,
        ),
        Command::Eval {
            model,
            variant,
            manifest,
            limit,
            json,
        } => eval::run(
            &context(&cli, None, None),
            eval::Args {
                model,
                variant: *variant,
                manifest,
                limit: *limit,
                json: json.as_deref(),
            },
            &mut sink,
        ),
        Command::Quantize { .. } => quantize::run(&context(&cli, None, None), command, &mut sink),
        Command::Sensitivity {
            quant,
            validation,
            write_scope,
            top,
        } => sensitivity::run(
            &context(&cli, None, None),
            quant,
            validation,
            write_scope.as_deref(),
            *top,
            &mut sink,
        ),
        Command::Report { config, out } => report::run(&cli, config, out, &mut sink),
    }
}
