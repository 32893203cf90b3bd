//! The interactive terminal UI. The engine runs on a worker thread and sends events; this loop folds
//! them (and keys) into [`app::App`] and draws. It redraws only when something changed, ticking while a
//! run is in progress so the clock and ETA move.

mod app;
mod keys;
mod view;
mod worker;

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use ratatui::crossterm::event::Event as TermEvent;
use ratatui::DefaultTerminal;

use app::Level;
pub use app::{Action, App, Command, Outcome, Scope, Status};
use worker::{Msg, Worker};

use crate::assets::Cache;
use crate::config::Experiment;
use crate::engine::{self, Context};

/// Redraw period while a run is in progress (clock, ETA); idle screens are redrawn only on input.
const TICK: Duration = Duration::from_millis(250);

pub struct Options {
    pub experiment: Experiment,
    pub config_path: PathBuf,
    /// The experiment file as it was read, for the reports.
    pub provenance: engine::Provenance,
    pub out_dir: PathBuf,
    pub cache: Cache,
    pub threads: usize,
    pub audio_limits: crate::data::audio::AudioLimits,
}

/// Draws one frame of `app` into any backend (the terminal, or a test buffer).
pub fn render(frame: &mut ratatui::Frame, app: &App, now: Instant) {
    view::draw(frame, app, now);
}

/// True when NO_COLOR is set to anything non-empty (no-color.org).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

pub fn run(opts: Options) -> Result<()> {
    let (tx, rx) = mpsc::channel();
    let mut app = App::new(
        opts.experiment.clone(),
        opts.config_path.clone(),
        opts.threads,
        Instant::now(),
    );
    app.color = !no_color();
    // ratatui's hook restores the terminal before a panic message prints. The engine thread's panics are
    // caught and shown as a failed run instead, so they leave the terminal (and the screen) alone.
    let mut terminal = ratatui::init();
    let restore_and_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some(worker::ENGINE_THREAD) {
            restore_and_report(info);
        }
    }));
    worker::spawn_input(tx.clone());
    let result = event_loop(&mut terminal, &mut app, &rx, &tx, &opts);
    ratatui::restore();
    if app.save_on_exit && !app.finished_rows().is_empty() {
        let paths = save(&app, &opts)?;
        eprintln!("quantbench: stopped mid-run; partial report (complete: false):");
        for p in paths {
            eprintln!("{}", p.display());
        }
    }
    if std::env::var_os("QUANTBENCH_TUI_STATS").is_some() {
        let f = &app.frame;
        let mean = f.total.as_secs_f64() * 1e3 / f.frames.max(1) as f64;
        eprintln!(
            "quantbench tui: {} frames, mean {mean:.2} ms, max {:.2} ms per frame",
            f.frames,
            f.max.as_secs_f64() * 1e3
        );
    }
    result
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    rx: &Receiver<Msg>,
    tx: &Sender<Msg>,
    opts: &Options,
) -> Result<()> {
    let mut worker: Option<Worker> = None;
    loop {
        let start = Instant::now();
        terminal
            .draw(|f| view::draw(f, app, start))
            .context("cannot draw to the terminal")?;
        app.frame.record(start.elapsed());
        let first = if app.is_busy() {
            match rx.recv_timeout(TICK) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            }
        };
        // Fold everything already queued before drawing again: a burst of events costs one frame.
        for msg in first.into_iter().chain(rx.try_iter()) {
            let now = Instant::now();
            match msg {
                Msg::Input(TermEvent::Key(key)) => {
                    let Some(action) = keys::action(key) else {
                        continue;
                    };
                    if let Some(cmd) = app.update(action, now) {
                        execute(cmd, app, &mut worker, tx, opts, now);
                    }
                }
                Msg::Input(_) => {} // resize and the rest: the redraw below is enough
                Msg::Engine(e) => app.apply(*e, now),
                Msg::Finished(outcome) => {
                    app.finish(outcome, now);
                    if let Some(w) = worker.take() {
                        w.join();
                    }
                }
            }
        }
        if app.quitting && !app.is_busy() {
            break;
        }
    }
    Ok(())
}

fn execute(
    cmd: Command,
    app: &mut App,
    worker: &mut Option<Worker>,
    tx: &Sender<Msg>,
    opts: &Options,
    now: Instant,
) {
    match cmd {
        Command::Start(scope) => {
            let exp = app.experiment_for(&scope);
            let ctx = Context {
                cache: opts.cache.clone(),
                ort_library: exp.runtime.ort_library.clone(),
                threads: app.settings.threads,
                cancel: Default::default(),
                audio_limits: opts.audio_limits,
            };
            *worker = Some(Worker::start(exp, opts.provenance.clone(), ctx, tx.clone()));
        }
        Command::Stop => {
            if let Some(w) = worker {
                w.cancel.cancel();
            }
        }
        Command::Quit => {
            if let Some(w) = worker {
                // Quitting mid-run keeps what finished: the loop saves a partial report once the run stops.
                app.save_on_exit = true;
                w.cancel.cancel();
            }
        }
        Command::Save => match save(app, opts) {
            Ok(paths) => {
                // The path stem once, then the extensions: both files fit on one line.
                let stem = paths.first().map(|p| p.with_extension(""));
                let exts: Vec<String> = paths
                    .iter()
                    .filter_map(|p| p.extension().map(|e| e.to_string_lossy().into_owned()))
                    .collect();
                let text = match stem {
                    Some(stem) => {
                        format!("report saved: {}.{{{}}}", stem.display(), exts.join(","))
                    }
                    None => "report saved".to_string(),
                };
                app.push_log(Level::Info, text, now);
            }
            Err(e) => app.push_log(Level::Error, format!("{e:#}"), now),
        },
    }
}

/// Writes the finished rows as `quantbench report` would, plus the settings changed here.
pub fn save(app: &App, opts: &Options) -> Result<Vec<PathBuf>> {
    let rows = app.finished_rows();
    anyhow::ensure!(
        !rows.is_empty(),
        "nothing to save yet: no row has finished (r runs the experiment)"
    );
    let mut result = engine::experiment_result(
        &app.experiment,
        &opts.provenance,
        app.settings.threads,
        app.first_run_utc.unwrap_or_else(chrono::Utc::now),
        rows,
        app.is_complete(),
    );
    result.settings_changed = app.settings.changes_from(&app.original);
    crate::report::write_report(&result, &opts.out_dir)
        .with_context(|| format!("{}: cannot write the report", opts.out_dir.display()))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::app::tests::{app, report};
    use super::*;

    #[test]
    fn save_writes_the_report_exporters_output_with_the_settings_changed() {
        let t0 = Instant::now();
        let mut a = app(t0);
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            experiment: a.experiment.clone(),
            config_path: "quantbench.toml".into(),
            provenance: Default::default(),
            out_dir: dir.path().join("reports"),
            cache: Cache::new(Some(dir.path().join("cache")), None),
            threads: 2,
            audio_limits: Default::default(),
        };
        let empty = save(&a, &opts).unwrap_err().to_string();
        assert!(empty.contains("nothing to save yet"), "{empty}");
        assert!(!opts.out_dir.exists(), "nothing written");

        let fixture = report();
        // Whisper's FP32 and one BLIP row: a partial save holds both kinds.
        for m in [fixture.rows[0].clone(), fixture.rows[4].clone()] {
            a.apply(engine::Event::RowDone(Box::new(m)), t0);
        }
        let partial = save(&a, &opts).unwrap();
        let json = crate::results::ExperimentResult::from_json(
            &std::fs::read_to_string(&partial[1]).unwrap(),
        )
        .unwrap();
        assert!(!json.complete);
        let kinds: Vec<_> = json.rows.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [crate::results::Kind::Whisper, crate::results::Kind::Blip]
        );
        std::fs::remove_dir_all(&opts.out_dir).unwrap();
        for m in fixture.rows.clone() {
            a.apply(engine::Event::RowDone(Box::new(m)), t0);
        }
        a.update(Action::Settings, t0);
        a.update(Action::Left, t0);
        a.update(Action::Close, t0);
        let paths = save(&a, &opts).unwrap();
        assert_eq!(paths.len(), 2);
        let md = std::fs::read_to_string(&paths[0]).unwrap();
        let json = crate::results::ExperimentResult::from_json(
            &std::fs::read_to_string(&paths[1]).unwrap(),
        )
        .unwrap();
        assert!(json.complete);
        assert_eq!(json.settings_changed, vec!["threads 2 → 1"]);
        assert!(md.contains("changed in the TUI") && md.contains("threads 2 → 1"));
        // The rows are the engine's, unchanged; the markdown is the report exporter's for them.
        assert_eq!(
            serde_json::to_value(&json.rows).unwrap(),
            serde_json::to_value(&fixture.rows).unwrap()
        );
        use crate::report::Exporter;
        assert_eq!(md, crate::report::Markdown.render(&json));
    }
}
