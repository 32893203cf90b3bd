//! The TUI's state. Engine events and user actions are folded in here; views only read it, and the side
//! effects an action asks for (start, stop, save, quit) come back as a [`Command`] for the event loop.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::{Experiment, Variant};
use crate::engine::{Event, Stage, Task};

mod rows;
mod settings;

pub use rows::{LiveSeries, Row, Running as RunningMetric, Status};
pub use settings::Settings;

/// The step running now, for the gauge.
#[derive(Debug, Clone)]
pub struct Running {
    pub task: Task,
    pub stage: Stage,
    pub done: usize,
    pub total: usize,
    pub stage_started: Instant,
    /// When the last progress event came.
    pub updated: Instant,
}

impl Running {
    /// Time left at the pace since the stage began.
    pub fn eta(&self, now: Instant) -> Option<Duration> {
        if self.done == 0 || self.done >= self.total {
            return None;
        }
        let per = now.duration_since(self.stage_started).as_secs_f64() / self.done as f64;
        Some(Duration::from_secs_f64(
            per * (self.total - self.done) as f64,
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone)]
pub struct LogLine {
    /// Since the TUI opened.
    pub at: Duration,
    pub level: Level,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Results,
    Experiment,
    Detail,
    Log,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Results, Pane::Experiment, Pane::Detail, Pane::Log];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Results => "results",
            Pane::Experiment => "experiment",
            Pane::Detail => "detail",
            Pane::Log => "log",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    ConfirmQuit,
    Settings { field: usize },
}

/// Which part of the experiment a run covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// One model entry, FP32 and one variant (FP32 alone when the variant is FP32).
    Only {
        entry: usize,
        variant: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Idle,
    Running { since: Instant },
    Stopping { since: Instant },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Stopped,
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    RunAll,
    RunSelected,
    Stop,
    Save,
    Quit,
    /// Ctrl-C: quit without asking, stopping any run.
    ForceQuit,
    Up,
    Down,
    Left,
    Right,
    NextPane,
    PrevPane,
    Help,
    Settings,
    Yes,
    No,
    Close,
}

/// Side effects the event loop carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Start(Scope),
    Stop,
    Save,
    Quit,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FrameTimes {
    pub last: Duration,
    pub max: Duration,
    pub total: Duration,
    pub frames: u64,
}

impl FrameTimes {
    pub fn record(&mut self, took: Duration) {
        self.last = took;
        self.max = self.max.max(took);
        self.total += took;
        self.frames += 1;
    }
}

pub struct App {
    pub experiment: Experiment,
    pub config_path: PathBuf,
    pub rows: Vec<Row>,
    pub selected: usize,
    pub focus: Pane,
    pub overlay: Option<Overlay>,
    pub running: Option<Running>,
    pub job: Job,
    pub log: Vec<LogLine>,
    /// Lines scrolled up from the newest log line, and down from the top of the detail pane.
    pub log_scroll: usize,
    pub detail_scroll: usize,
    pub settings: Settings,
    pub original: Settings,
    pub quitting: bool,
    /// Quit was asked while a run was going: save what finished once it stops.
    pub save_on_exit: bool,
    pub color: bool,
    pub opened: Instant,
    /// When the first run of this session started (the saved report's start).
    pub first_run_utc: Option<chrono::DateTime<chrono::Utc>>,
    pub frame: FrameTimes,
    /// Accuracy control's trajectory per model as it grows, and the bound on the time left.
    pub control:
        std::collections::BTreeMap<String, (Vec<crate::results::control::ControlStep>, f64)>,
}

impl App {
    pub fn new(experiment: Experiment, config_path: PathBuf, threads: usize, now: Instant) -> Self {
        let mut rows = Vec::new();
        for (i, entry) in experiment.models.iter().enumerate() {
            let name = crate::models::display_name(&entry.model);
            for v in entry.variants() {
                rows.push(Row::new(i, name.clone(), entry.kind, v.name().to_string()));
            }
            if let Some(ac) = &entry.accuracy_control {
                rows.push(Row::new(i, name.clone(), entry.kind, ac.label()));
            }
        }
        let settings = Settings {
            threads,
            warmup: experiment.measure.warmup,
            runs: experiment.measure.runs,
            e2e_passes: experiment.measure.e2e_passes,
        };
        App {
            experiment,
            config_path,
            rows,
            selected: 0,
            focus: Pane::Results,
            overlay: None,
            running: None,
            job: Job::Idle,
            log: Vec::new(),
            log_scroll: 0,
            detail_scroll: 0,
            settings,
            original: settings,
            save_on_exit: false,
            quitting: false,
            color: true,
            opened: now,
            first_run_utc: None,
            frame: FrameTimes::default(),
            control: Default::default(),
        }
    }

    pub fn selected_row(&self) -> Option<&Row> {
        self.rows.get(self.selected)
    }

    pub fn is_busy(&self) -> bool {
        self.job != Job::Idle
    }

    /// The FP32 row of the same model entry.
    pub fn baseline_of(&self, row: &Row) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.entry == row.entry && r.is_baseline())
    }

    /// The experiment a run of `scope` executes, with the UI's settings applied.
    pub fn experiment_for(&self, scope: &Scope) -> Experiment {
        let mut exp = self.experiment.clone();
        exp.runtime.threads = self.settings.threads;
        exp.measure.warmup = self.settings.warmup;
        exp.measure.runs = self.settings.runs;
        exp.measure.e2e_passes = self.settings.e2e_passes;
        if let Scope::Only { entry, variant } = scope {
            let mut m = exp.models[*entry].clone();
            m.variants = Variant::parse(variant)
                .ok()
                .filter(|v| *v != Variant::Fp32)
                .into_iter()
                .collect();
            exp.models = vec![m];
        }
        exp
    }

    /// Every finished row, in the experiment's order: what a saved report holds.
    pub fn finished_rows(&self) -> Vec<crate::results::Row> {
        self.rows
            .iter()
            .filter_map(|r| r.result.as_deref().cloned())
            .collect()
    }

    pub fn push_log(&mut self, level: Level, text: impl Into<String>, now: Instant) {
        self.log.push(LogLine {
            at: now.duration_since(self.opened),
            level,
            text: text.into(),
        });
        if self.log_scroll > 0 {
            self.log_scroll += 1; // keep the lines being read in place
        }
    }

    /// Whether every row of the experiment has finished (a save is then complete).
    pub fn is_complete(&self) -> bool {
        !self.is_busy() && self.rows.iter().all(|r| r.result.is_some())
    }

    fn row_mut(&mut self, model: &str, variant: &str) -> Option<&mut Row> {
        self.rows
            .iter_mut()
            .find(|r| r.model == model && r.variant == variant)
    }

    /// Folds one engine event into the state.
    pub fn apply(&mut self, event: Event, now: Instant) {
        match event {
            Event::Note(m) => self.push_log(Level::Info, m, now),
            Event::Warning(m) => self.push_log(Level::Warn, m, now),
            Event::Progress {
                task,
                stage,
                done,
                total,
            } => {
                for r in self.rows.iter_mut().filter(|r| r.model == task.model) {
                    if task.variants.contains(&r.variant) {
                        r.status = Status::of(stage);
                    }
                }
                let same = self
                    .running
                    .as_ref()
                    .is_some_and(|p| p.task == task && p.stage == stage);
                // A stage first heard of after its first step began when the previous event came.
                let stage_started = match &self.running {
                    Some(p) if same => p.stage_started,
                    Some(p) if done > 0 => p.updated,
                    _ => now,
                };
                self.running = Some(Running {
                    task,
                    stage,
                    done,
                    total,
                    stage_started,
                    updated: now,
                });
            }
            Event::Opened {
                model,
                variant,
                parts,
                quantization,
            } => {
                if let Some(r) = self.row_mut(&model, &variant) {
                    r.parts = parts;
                    r.quantization = quantization;
                }
            }
            Event::Accuracy {
                model,
                variant,
                metric,
                done,
                total,
                so_far,
            } => {
                if let Some(r) = self.row_mut(&model, &variant) {
                    r.running = Some(RunningMetric {
                        metric,
                        value: so_far,
                        done,
                        total,
                    });
                }
            }
            Event::Series {
                model,
                variant,
                name,
                series,
                speedup,
            } => {
                if let Some(r) = self.row_mut(&model, &variant) {
                    r.live.insert(
                        name.to_string(),
                        LiveSeries {
                            series: *series,
                            speedup,
                        },
                    );
                }
            }
            Event::Segment {
                model,
                variant,
                recording,
                segment,
            } => {
                if let Some(r) = self.row_mut(&model, &variant) {
                    r.segments.push(recording, segment);
                }
            }
            Event::ControlStep {
                model,
                step,
                eta_seconds,
            } => {
                let entry = self.control.entry(model).or_default();
                entry.0.push(*step);
                entry.1 = eta_seconds;
            }
            Event::RowDone(result) => {
                let (model, variant) = (result.model.clone(), result.variant.clone());
                let found = self
                    .rows
                    .iter()
                    .position(|r| r.model == model && r.variant == variant);
                let i = found.unwrap_or_else(|| {
                    // A folder given by path that is itself quantized reports under its recipe.
                    let entry = self.rows.last().map_or(0, |r| r.entry);
                    self.rows
                        .push(Row::new(entry, model.clone(), result.kind, variant.clone()));
                    self.rows.len() - 1
                });
                let row = &mut self.rows[i];
                row.status = Status::Done;
                let failed: Vec<String> = result
                    .verdicts
                    .iter()
                    .filter(|v| !v.pass)
                    .map(|v| {
                        let got = v.value.map_or("not measured".into(), |x| format!("{x:.3}"));
                        format!("{} {} (got {got})", v.check, v.limit)
                    })
                    .collect();
                row.parts = result.parts.clone();
                row.quantization = result.quantization.clone();
                let warnings = result.warnings.clone();
                row.result = Some(result);
                for w in warnings {
                    self.push_log(Level::Warn, format!("{model} {variant}: {w}"), now);
                }
                for f in failed {
                    self.push_log(
                        Level::Warn,
                        format!("{model} {variant}: threshold failed: {f}"),
                        now,
                    );
                }
            }
        }
    }

    /// A run ended: rows still in progress become failed or stopped.
    pub fn finish(&mut self, outcome: Outcome, now: Instant) {
        let status = match &outcome {
            Outcome::Done => Status::Done,
            Outcome::Stopped => Status::Stopped,
            Outcome::Failed(_) => Status::Failed,
        };
        for r in self.rows.iter_mut().filter(|r| r.status.is_active()) {
            r.status = status;
        }
        let took = match self.job {
            Job::Running { since } | Job::Stopping { since } => now.duration_since(since),
            Job::Idle => Duration::ZERO,
        };
        match outcome {
            Outcome::Done => self.push_log(
                Level::Info,
                format!("run finished in {:.1} s", took.as_secs_f64()),
                now,
            ),
            Outcome::Stopped => self.push_log(
                Level::Warn,
                format!("run stopped after {:.1} s", took.as_secs_f64()),
                now,
            ),
            Outcome::Failed(e) => self.push_log(Level::Error, e, now),
        }
        self.running = None;
        self.job = Job::Idle;
    }

    /// Applies a user action; returns what the event loop has to do, if anything.
    pub fn update(&mut self, action: Action, now: Instant) -> Option<Command> {
        match (self.overlay, action) {
            (_, Action::ForceQuit) => return self.quit(),
            (Some(Overlay::ConfirmQuit), Action::Yes) => {
                self.overlay = None;
                return self.quit();
            }
            (Some(Overlay::ConfirmQuit), _) => self.overlay = None,
            (Some(Overlay::Settings { field }), a) => return self.settings_action(field, a, now),
            (Some(Overlay::Help), Action::Help | Action::Close | Action::No | Action::Quit) => {
                self.overlay = None
            }
            (Some(Overlay::Help), _) => {}
            (None, a) => return self.main_action(a, now),
        }
        None
    }

    fn quit(&mut self) -> Option<Command> {
        self.quitting = true;
        if let Job::Running { since } = self.job {
            self.job = Job::Stopping { since };
        }
        Some(Command::Quit)
    }

    fn start(&mut self, scope: Scope, now: Instant) -> Option<Command> {
        if self.is_busy() {
            self.push_log(Level::Warn, "a run is in progress: stop it (x) first", now);
            return None;
        }
        for r in &mut self.rows {
            let covered = match &scope {
                Scope::All => true,
                Scope::Only { entry, variant } => {
                    r.entry == *entry && (r.is_baseline() || &r.variant == variant)
                }
            };
            if covered {
                r.reset();
            }
        }
        self.first_run_utc.get_or_insert_with(chrono::Utc::now);
        self.job = Job::Running { since: now };
        let what = match &scope {
            Scope::All => "run all".to_string(),
            Scope::Only { entry, variant } => format!(
                "run {} fp32 vs {variant}",
                crate::models::display_name(&self.experiment.models[*entry].model)
            ),
        };
        self.push_log(Level::Info, what, now);
        Some(Command::Start(scope))
    }

    fn main_action(&mut self, action: Action, now: Instant) -> Option<Command> {
        match action {
            Action::RunAll => return self.start(Scope::All, now),
            Action::RunSelected => {
                let row = self.selected_row()?;
                let scope = Scope::Only {
                    entry: row.entry,
                    variant: row.variant.clone(),
                };
                return self.start(scope, now);
            }
            Action::Stop => {
                if let Job::Running { since } = self.job {
                    self.job = Job::Stopping { since };
                    self.push_log(Level::Info, "stopping after the current step ...", now);
                    return Some(Command::Stop);
                }
            }
            Action::Save => return Some(Command::Save),
            Action::Quit if self.is_busy() => self.overlay = Some(Overlay::ConfirmQuit),
            Action::Quit => return self.quit(),
            Action::Help => self.overlay = Some(Overlay::Help),
            Action::Settings => self.overlay = Some(Overlay::Settings { field: 0 }),
            Action::NextPane | Action::Right => self.focus = self.cycle(1),
            Action::PrevPane | Action::Left => self.focus = self.cycle(Pane::ALL.len() - 1),
            Action::Up | Action::Down => self.scroll(action == Action::Up),
            Action::ForceQuit | Action::Yes | Action::No | Action::Close => {}
        }
        None
    }

    fn cycle(&self, by: usize) -> Pane {
        let i = Pane::ALL.iter().position(|p| *p == self.focus).unwrap_or(0);
        Pane::ALL[(i + by) % Pane::ALL.len()]
    }

    fn scroll(&mut self, up: bool) {
        match self.focus {
            Pane::Results | Pane::Experiment => {
                let last = self.rows.len().saturating_sub(1);
                let before = self.selected;
                self.selected = if up {
                    self.selected.saturating_sub(1)
                } else {
                    (self.selected + 1).min(last)
                };
                if self.selected != before {
                    self.detail_scroll = 0;
                }
            }
            Pane::Detail => {
                self.detail_scroll = if up {
                    self.detail_scroll.saturating_sub(1)
                } else {
                    self.detail_scroll + 1
                }
            }
            Pane::Log => {
                self.log_scroll = if up {
                    (self.log_scroll + 1).min(self.log.len().saturating_sub(1))
                } else {
                    self.log_scroll.saturating_sub(1)
                }
            }
        }
    }

    fn settings_action(&mut self, field: usize, action: Action, now: Instant) -> Option<Command> {
        let last = Settings::FIELDS.len() - 1;
        match action {
            Action::Up => {
                self.overlay = Some(Overlay::Settings {
                    field: field.saturating_sub(1),
                })
            }
            Action::Down => {
                self.overlay = Some(Overlay::Settings {
                    field: (field + 1).min(last),
                })
            }
            Action::Left | Action::Right => {
                let before = self.settings;
                self.settings
                    .adjust(field, if action == Action::Right { 1 } else { -1 });
                if self.settings != before {
                    let change = self.settings.changes_from(&before).join("");
                    self.push_log(
                        Level::Info,
                        format!("setting {change} (applies to the next run)"),
                        now,
                    );
                }
            }
            Action::Close | Action::Settings | Action::Quit | Action::No => self.overlay = None,
            Action::ForceQuit => return self.quit(),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests;
