use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser;

use quantbench::assets::Cache;
use quantbench::cli::{Cli, Command};
use quantbench::config::Experiment;
use quantbench::engine::{self, Context, Event};

/// Exit codes: 0 success, 1 error (message on stderr), 2 usage error (from clap),
/// 3 `report` finished and wrote its files but a threshold of the experiment failed.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::ThresholdFailed(failures)) => {
            for f in failures {
                eprintln!("threshold failed: {f}");
            }
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The error chain on one line, outermost context first.
fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Progress on stderr: an updating line when both stdout and stderr are terminals, plain lines otherwise
/// (piped or redirected output, CI logs).
struct Progress {
    tty: bool,
    last_stage: Option<(String, engine::Stage)>,
}

impl Progress {
    fn new() -> Self {
        Progress {
            tty: std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
            last_stage: None,
        }
    }

    fn event(&mut self, e: Event) {
        let mut err = std::io::stderr().lock();
        match e {
            Event::Note(m) | Event::Warning(m) => {
                if self.tty {
                    let _ = write!(err, "\r\x1b[2K");
                }
                let _ = writeln!(err, "{m}");
            }
            Event::Progress {
                task,
                stage,
                done,
                total,
            } => {
                let model = task.to_string();
                let line = format!("{model}: {} {done}/{total}", stage.label());
                if self.tty {
                    let _ = write!(err, "\r\x1b[2K{line}");
                    if done == total {
                        let _ = writeln!(err);
                    }
                } else {
                    let key = (model.clone(), stage);
                    let new_stage = self.last_stage.as_ref() != Some(&key);
                    if new_stage || done == total || done % 10 == 0 {
                        let _ = writeln!(err, "{line}");
                    }
                    self.last_stage = Some(key);
                }
            }
            Event::Opened { .. }
            | Event::Item { .. }
            | Event::Series { .. }
            | Event::ModelDone(_) => {}
        }
    }
}

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
            .unwrap_or_else(quantbench::runtime::default_threads),
        cancel: Default::default(),
    }
}

/// `--smooth-quant`: `off`, one α for every part, or `ENCODER,DECODER` where either may be `off`.
fn parse_alpha(text: &str) -> Result<Option<quantbench::quant::SmoothAlpha>> {
    if text == "off" {
        return Ok(None);
    }
    let one = |v: &str| -> Option<Option<f32>> {
        match v.trim() {
            "off" => Some(None),
            v => v
                .parse::<f32>()
                .ok()
                .filter(|a| (0.0..=1.0).contains(a))
                .map(Some),
        }
    };
    let values = text.split(',').map(one).collect::<Option<Vec<_>>>();
    match values.as_deref() {
        Some(&[a]) => Ok(Some(quantbench::quant::SmoothAlpha {
            encoder: a,
            decoder: a,
        })),
        Some(&[encoder, decoder]) => Ok(Some(quantbench::quant::SmoothAlpha { encoder, decoder })),
        _ => anyhow::bail!(
            "--smooth-quant: expected `off`, an α in [0, 1] or `ENCODER,DECODER` (e.g. 0.5,0.95 or 0.5,off), got `{text}`"
        ),
    }
}

enum Outcome {
    Done,
    ThresholdFailed(Vec<String>),
}

/// `quantbench` alone: the TUI, which needs a terminal on both ends.
fn tui(cli: &Cli) -> Result<Outcome> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        anyhow::bail!(
            "the interactive TUI needs a terminal (stdin and stdout); for a headless run use `quantbench report --config {}` (see `quantbench --help`)",
            cli.config.display()
        );
    }
    let exp = Experiment::load(&cli.config)?;
    let threads = cli.threads.unwrap_or_else(|| exp.threads());
    quantbench::tui::run(quantbench::tui::Options {
        cache: Cache::new(cli.cache_dir.clone(), cli.wheelhouse.clone()),
        config_path: cli.config.clone(),
        out_dir: cli.out.clone(),
        experiment: exp,
        threads,
    })?;
    Ok(Outcome::Done)
}

fn run(cli: Cli) -> Result<Outcome> {
    let mut progress = Progress::new();
    let mut sink = |e: Event| progress.event(e);
    let Some(command) = &cli.command else {
        return tui(&cli);
    };
    match command {
        Command::Fetch { names } => {
            let ctx = context(&cli, None, None);
            let all: Vec<String> = quantbench::assets::ASSETS
                .iter()
                .map(|a| a.name.to_string())
                .collect();
            let names = if names.is_empty() { &all } else { names };
            for n in names {
                let dir = ctx
                    .cache
                    .ensure(n, &mut |m| sink(Event::Note(m.to_string())))?;
                println!("{n}\t{}", dir.display());
            }
        }
        Command::Convert { ct2_dir, out_dir } => {
            quantbench::models::whisper::export::convert(ct2_dir, out_dir)?;
            println!("{}", out_dir.display());
        }
        Command::Transcribe {
            model,
            variant,
            files,
        } => {
            let ctx = context(&cli, None, None);
            // The model opens after the first file decodes, so a bad input fails fast.
            let mut pipeline = None;
            for f in files {
                let audio = quantbench::data::audio::load_16k(f)?;
                if pipeline.is_none() {
                    pipeline = Some(
                        engine::open_variant(model, variant, &Default::default(), &ctx, &mut sink)?
                            .pipeline,
                    );
                }
                let p = pipeline.as_mut().expect("opened above");
                let t = p
                    .transcribe(&audio.samples)
                    .with_context(|| f.display().to_string())?;
                println!("{}\t{}", f.display(), t.text);
            }
        }
        Command::Export { name, out_dir } => {
            engine::export_builtin(name, out_dir, &mut sink)?;
            println!("{}", out_dir.display());
        }
        Command::Caption { model, images } => {
            let ctx = context(&cli, None, None);
            // Every image decodes before the model opens, so a bad input fails fast.
            let decoded = images
                .iter()
                .map(|f| quantbench::data::image::load_rgb(f))
                .collect::<Result<Vec<_>, _>>()?;
            let mut pipeline = engine::open_blip(model, &ctx, &mut sink)?;
            for (f, image) in images.iter().zip(&decoded) {
                let c = pipeline
                    .caption(image)
                    .with_context(|| f.display().to_string())?;
                println!("{}\t{}", f.display(), c.text);
            }
        }
        Command::Vqa {
            model,
            image,
            question,
        } => {
            let ctx = context(&cli, None, None);
            anyhow::ensure!(!question.trim().is_empty(), "the question is empty");
            let decoded = quantbench::data::image::load_rgb(image)?;
            let mut pipeline = engine::open_blip(model, &ctx, &mut sink)?;
            let a = pipeline
                .answer(&decoded, question)
                .with_context(|| image.display().to_string())?;
            if a.question_truncated {
                eprintln!(
                    "warning: the question is longer than the model's {} tokens; it was cut",
                    pipeline.model.config.max_question_tokens
                );
            }
            println!("{}", a.text);
        }
        Command::Eval {
            model,
            variant,
            manifest,
            limit,
            json,
        } => {
            let ctx = context(&cli, None, None);
            use quantbench::data::manifest::{kind_of, load_captions, load_vqa, ManifestKind};
            let kind = kind_of(manifest)?;
            if kind != ManifestKind::Speech {
                // Validate the manifest before any model work.
                match kind {
                    ManifestKind::Vqa => drop(load_vqa(manifest)?),
                    _ => drop(load_captions(manifest)?),
                }
                let setup = if variant == "seed" {
                    engine::QuantSetup {
                        params: quantbench::quant::StaticParams::seed(),
                        ..Default::default()
                    }
                } else {
                    engine::QuantSetup::default()
                };
                let opened = engine::open_blip_variant(model, variant, &setup, &ctx, &mut sink)?;
                let mut pipeline = opened.pipeline;
                let (name, variant) = (opened.model.name.clone(), opened.variant.clone());
                let text = if kind == ManifestKind::Vqa {
                    let r = engine::evaluate_vqa(
                        &mut pipeline,
                        (&name, &variant),
                        manifest,
                        *limit,
                        &mut sink,
                    )?;
                    let types: Vec<String> = r
                        .accuracy_by_type
                        .iter()
                        .map(|(t, a)| format!("{t} {:.2} %", a * 100.0))
                        .collect();
                    println!(
                        "{name} {variant}: VQA accuracy {:.2} %  ({})  n {}  latency median {:.1} ms",
                        r.accuracy * 100.0,
                        types.join(", "),
                        r.n,
                        r.latency_ms.median
                    );
                    serde_json::to_string_pretty(&r)?
                } else {
                    let r = engine::evaluate_captions(
                        &mut pipeline,
                        (&name, &variant),
                        manifest,
                        *limit,
                        &mut sink,
                    )?;
                    println!(
                        "{name} {variant}: caption exact match {:.2} %  token F1 {:.2} %  n {}  latency median {:.1} ms",
                        r.exact_match * 100.0,
                        r.token_f1 * 100.0,
                        r.n,
                        r.latency_ms.median
                    );
                    serde_json::to_string_pretty(&r)?
                };
                if let Some(path) = json {
                    quantbench::fsutil::write_atomic(path, (text + "\n").as_bytes())
                        .with_context(|| format!("{}: cannot write", path.display()))?;
                }
                return Ok(Outcome::Done);
            }
            quantbench::data::manifest::load_speech(manifest)?;
            let mut opened =
                engine::open_variant(model, variant, &Default::default(), &ctx, &mut sink)?;
            let (name, variant) = (opened.model.name.clone(), opened.variant.clone());
            let result = engine::evaluate(
                &mut opened.pipeline,
                (&name, &variant),
                manifest,
                *limit,
                &mut sink,
            )?;
            println!(
                "{name} {variant}: WER {:.2} %  CER {:.2} %  n {}  latency median {:.1} ms",
                result.wer * 100.0,
                result.cer * 100.0,
                result.n,
                result.latency_ms.median
            );
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&result)? + "\n";
                quantbench::fsutil::write_atomic(path, text.as_bytes())
                    .with_context(|| format!("{}: cannot write", path.display()))?;
            }
        }
        Command::Quantize {
            model,
            recipe,
            out,
            force,
            ignore_names,
            ignore_patterns,
            ignore_types,
            calib,
            calib_size,
            seed,
            estimator,
            smooth_quant,
            no_bias_correction,
            parts,
        } => {
            let recipe = quantbench::quant::Recipe::parse(recipe)?;
            let defaults = if recipe == quantbench::quant::Recipe::Seed {
                quantbench::quant::StaticParams::seed()
            } else {
                quantbench::quant::StaticParams::default()
            };
            let setup = engine::QuantSetup {
                ignored: quantbench::quant::IgnoredScope {
                    names: ignore_names.clone(),
                    patterns: ignore_patterns.clone(),
                    types: ignore_types.clone(),
                },
                params: quantbench::quant::StaticParams {
                    estimator: quantbench::quant::calib::Estimator::parse(estimator)
                        .map_err(|e| anyhow::anyhow!("--estimator: {e}"))?,
                    smooth_quant: match smooth_quant {
                        Some(text) => parse_alpha(text)?,
                        None => defaults.smooth_quant,
                    },
                    bias_correction: !no_bias_correction,
                    calibration_size: calib_size.unwrap_or(defaults.calibration_size),
                    seed: *seed,
                },
                calibration: calib.clone(),
                parts: parts
                    .iter()
                    .map(|p| {
                        let (part, recipe) = p.split_once('=').ok_or_else(|| {
                            anyhow::anyhow!("--part: expected PART=RECIPE (e.g. text_decoder_with_past=weights), got `{p}`")
                        })?;
                        Ok((part.to_string(), quantbench::quant::Recipe::parse(recipe)?))
                    })
                    .collect::<Result<_>>()?,
            };
            let ctx = context(&cli, None, None);
            let (dir, summary) = engine::quantize(
                model,
                recipe,
                &setup,
                out.as_deref(),
                *force,
                &ctx,
                &mut sink,
            )?;
            for p in &summary.parts {
                let (q, t) = p
                    .ops
                    .values()
                    .fold((0, 0), |(q, t), c| (q + c.quantized, t + c.total));
                println!("{}: {q} of {t} ops quantized", p.file);
            }
            println!("{}", dir.display());
        }
        Command::Report { config, out } => {
            let exp = Experiment::load(config)?;
            let ctx = context(&cli, Some(exp.threads()), exp.runtime.ort_library.clone());
            let result = engine::run_experiment(&exp, config, &ctx, &mut sink)?;
            let paths = quantbench::report::write_report(&result, out)
                .with_context(|| format!("{}: cannot write the report", out.display()))?;
            for m in &result.models {
                println!(
                    "{} {}: WER {:.2} % on {} utterances; encoder {:.1} ms, decoder step {:.2} ms, end-to-end mean {:.1} ms; outside ORT {:.2} %",
                    m.model,
                    m.variant,
                    m.accuracy.wer * 100.0,
                    m.accuracy.n,
                    m.latency.encoder_ms.median,
                    m.latency.decoder_step_ms.median,
                    m.latency.end_to_end_ms.mean,
                    m.latency.outside_ort_share * 100.0
                );
            }
            for p in paths {
                println!("{}", p.display());
            }
            let failures = result.failures();
            if !failures.is_empty() {
                return Ok(Outcome::ThresholdFailed(failures));
            }
        }
    }
    Ok(Outcome::Done)
}
