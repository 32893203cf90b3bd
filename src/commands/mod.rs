//! One module per subcommand; each wires the engine to a face. `run` only dispatches.

mod cache;
mod caption;
mod compare;
mod compose;
mod convert;
mod eval;
mod export;
mod fetch;
mod gate;
mod merge;
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
    /// `report` or `gate`: a threshold failed; each failure, for a `threshold failed:` line (exit 3).
    ThresholdFailed(Vec<String>),
    /// `compare --fail-on regression`: each regression, for a `regression:` line (exit 3).
    Regressed(Vec<String>),
    /// `report --check-repro`: each difference outside latency, for a `not reproduced:` line (exit 3).
    NotReproduced(Vec<String>),
    /// `report` was stopped by a signal and wrote a partial report (exit 130).
    Interrupted,
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
        audio_limits: crate::data::audio::AudioLimits {
            max_seconds: cli.max_audio_seconds,
        },
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
        Command::Cache {
            action: crate::cli::CacheAction::Verify,
        } => cache::verify(&context(&cli, None, None).cache),
        Command::Transcribe {
            model,
            variant,
            language,
            task,
            format,
            output_dir,
            long_form,
            files,
        } => transcribe::run(
            &context(&cli, None, None),
            &transcribe::Request {
                model,
                variant: *variant,
                language: transcribe::Language::parse(language),
                task: *task,
                format: *format,
                output_dir: output_dir.as_deref(),
                long_form: long_form.options(),
                files,
            },
            &mut sink,
        ),
        Command::Compose { spec, out_dir } => {
            compose::run(spec, out_dir, &context(&cli, None, None).audio_limits)
        }
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
            shard,
            shard_count,
        } => eval::run(
            &context(&cli, None, None),
            eval::Args {
                model,
                variant: *variant,
                manifest,
                limit: *limit,
                json: json.as_deref(),
                shard: eval::shard_of(*shard, *shard_count, &|k| std::env::var(k).ok())?,
            },
            &mut sink,
        ),
        Command::Gate { report, gate } => gate::run(report, gate),
        Command::Compare {
            old,
            new,
            md,
            noise,
            fail_on,
            force,
        } => compare::run(compare::Args {
            old,
            new,
            md: md.as_deref(),
            noise: *noise,
            fail_on_regression: fail_on.is_some(),
            force: *force,
        }),
        Command::Merge {
            shards,
            json,
            max_accuracy_drop_points,
            min_relative_accuracy,
            gate,
        } => merge::run(
            shards,
            json,
            &crate::config::Thresholds {
                max_accuracy_drop_points: *max_accuracy_drop_points,
                min_relative_accuracy: *min_relative_accuracy,
                ..Default::default()
            },
            gate,
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
        Command::Report {
            config,
            out,
            gate,
            gate_args,
            check_repro,
        } => report::run(
            &cli,
            report::Args {
                config,
                out,
                gate: gate.then_some(gate_args),
                check_repro: check_repro.as_deref(),
            },
            &mut sink,
        ),
    }
}
