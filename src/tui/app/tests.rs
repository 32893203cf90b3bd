//! Events in → state out, and actions → commands.

use std::time::{Duration, Instant};

use super::*;
use crate::engine::{Event, Stage, Task};
use crate::measure::stats::Stats;
use crate::results::{ExperimentResult, Metric, Series};

pub(crate) const EXPERIMENT: &str = r#"
name = "tiny"
[measure]
warmup = 1
runs = 5
decoder_cache_len = 8
e2e_passes = 1
[[models]]
model = "whisper-tiny.en"
dataset = "datasets/speech-en/manifest.jsonl"
variants = ["dynamic", "static"]
[[models]]
model = "blip-easyvqa"
dataset = "easy-vqa:test"
variants = ["seed"]
"#;

pub(crate) fn app(t0: Instant) -> App {
    let mut exp: Experiment = toml::from_str(EXPERIMENT).expect("experiment parses");
    for m in &mut exp.models {
        m.kind = crate::models::kind_of(&m.model);
    }
    App::new(exp, "quantbench.toml".into(), 2, t0)
}

/// The rows of a real `quantbench report` run of tests/fixtures/tui-experiment.toml (tiny.en: fp32,
/// dynamic, static; blip-easyvqa: fp32, seed).
pub(crate) fn report() -> ExperimentResult {
    ExperimentResult::from_json(include_str!("../../../tests/fixtures/tui-report.json"))
        .expect("fixture parses")
}

fn progress(variants: &[&str], stage: Stage, done: usize, total: usize) -> Event {
    Event::Progress {
        task: Task::new("whisper-tiny.en", variants),
        stage,
        done,
        total,
    }
}

fn accuracy(variant: &str, done: usize, so_far: f64) -> Event {
    Event::Accuracy {
        model: "blip-easyvqa".into(),
        variant: variant.into(),
        metric: Metric::VqaAccuracy,
        done,
        total: 40,
        so_far: Some(so_far),
    }
}

#[test]
fn rows_come_from_the_experiment_fp32_first() {
    let a = app(Instant::now());
    let names: Vec<(&str, &str)> = a
        .rows
        .iter()
        .map(|r| (r.model.as_str(), r.variant.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("whisper-tiny.en", "fp32"),
            ("whisper-tiny.en", "dynamic"),
            ("whisper-tiny.en", "static"),
            ("blip-easyvqa", "fp32"),
            ("blip-easyvqa", "seed"),
        ]
    );
    assert_eq!(a.rows[3].kind, crate::results::Kind::Blip);
    assert!(a.rows.iter().all(|r| r.status == Status::Pending));
}

#[test]
fn progress_sets_the_task_variants_status_and_the_gauge_keeps_its_stage_start() {
    let t0 = Instant::now();
    let mut a = app(t0);
    a.apply(progress(&["static"], Stage::Calibrate, 0, 30), t0);
    assert_eq!(a.rows[2].status, Status::Calibrating);
    assert_eq!(a.rows[0].status, Status::Pending);
    a.apply(
        progress(&["static"], Stage::Calibrate, 10, 30),
        t0 + Duration::from_secs(5),
    );
    let run = a.running.clone().unwrap();
    assert_eq!(run.stage_started, t0);
    // 10 clips in 5 s: 20 more take 10 s.
    assert_eq!(
        run.eta(t0 + Duration::from_secs(5)),
        Some(Duration::from_secs(10))
    );
    let t1 = t0 + Duration::from_secs(6);
    a.apply(
        progress(
            &["fp32", "dynamic", "static"],
            Stage::Measure("encoder"),
            1,
            5,
        ),
        t1,
    );
    assert!(a.rows[..3].iter().all(|r| r.status == Status::Measuring));
    assert_eq!(a.rows[3].status, Status::Pending, "another model's fp32");
    // First heard of at 1 of 5: it began when the calibration's last event came.
    assert_eq!(
        a.running.as_ref().unwrap().stage_started,
        t0 + Duration::from_secs(5)
    );
    a.apply(
        progress(&["fp32"], Stage::Measure("end_to_end"), 0, 5),
        t1 + Duration::from_secs(1),
    );
    assert_eq!(
        a.running.as_ref().unwrap().stage_started,
        t1 + Duration::from_secs(1)
    );
}

#[test]
fn accuracy_events_keep_the_metric_so_far_of_their_row() {
    let t0 = Instant::now();
    let mut a = app(t0);
    a.apply(accuracy("seed", 10, 0.9), t0);
    a.apply(accuracy("seed", 20, 0.95), t0);
    let r = a.rows[4].running.unwrap();
    assert_eq!((r.done, r.total, r.value), (20, 40, Some(0.95)));
    assert!(a.rows[3].running.is_none());
}

#[test]
fn series_and_finished_rows_fill_the_table() {
    let t0 = Instant::now();
    let mut a = app(t0);
    let stats = Stats::of(&[3.0, 1.0, 2.0]).unwrap();
    let ratio = crate::measure::stats::Ratio {
        median: 1.5,
        ci95: [1.4, 1.6],
    };
    a.apply(
        Event::Series {
            model: "whisper-tiny.en".into(),
            variant: "dynamic".into(),
            name: "encoder",
            series: Box::new(Series {
                stats,
                tokens: None,
                ms_per_token: None,
                histogram: None,
            }),
            speedup: Some(ratio),
        },
        t0,
    );
    let r = &a.rows[1];
    assert_eq!(r.series("encoder").unwrap().stats.median_ms, 2.0);
    assert_eq!(r.speedup("encoder"), Some(ratio));
    assert!(a.finished_rows().is_empty());
    for m in report().rows.into_iter().rev() {
        a.apply(Event::RowDone(Box::new(m)), t0);
    }
    assert!(a.rows.iter().all(|r| r.status == Status::Done));
    let order: Vec<(String, String)> = a
        .finished_rows()
        .into_iter()
        .map(|m| (m.model, m.variant))
        .collect();
    let want = [
        ("whisper-tiny.en", "fp32"),
        ("whisper-tiny.en", "dynamic"),
        ("whisper-tiny.en", "static"),
        ("blip-easyvqa", "fp32"),
        ("blip-easyvqa", "seed"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(m, v)| (m.to_string(), v.to_string()))
        .collect();
    assert_eq!(order, want, "experiment order, both kinds");
    assert_eq!(a.rows[1].bytes(), Some(a.finished_rows()[1].bytes()));
    assert!(a.is_complete());
}

#[test]
fn a_failed_or_stopped_run_marks_the_rows_in_progress() {
    let t0 = Instant::now();
    let mut a = app(t0);
    assert_eq!(
        a.update(Action::RunAll, t0),
        Some(Command::Start(Scope::All))
    );
    a.apply(progress(&["static"], Stage::Quantize, 0, 1), t0);
    a.finish(Outcome::Failed("model.onnx: broken".into()), t0);
    assert_eq!(a.rows[2].status, Status::Failed);
    assert_eq!(a.rows[0].status, Status::Pending);
    assert_eq!(a.job, Job::Idle);
    assert!(a.running.is_none());
    let last = a.log.last().unwrap();
    assert_eq!(
        (last.level, last.text.as_str()),
        (Level::Error, "model.onnx: broken")
    );

    a.update(Action::RunAll, t0);
    a.apply(progress(&["fp32", "dynamic"], Stage::Evaluate, 1, 3), t0);
    assert_eq!(a.update(Action::Stop, t0), Some(Command::Stop));
    assert!(matches!(a.job, Job::Stopping { .. }));
    a.finish(Outcome::Stopped, t0);
    assert_eq!(a.rows[0].status, Status::Stopped);
    assert_eq!(a.rows[2].status, Status::Pending, "reset by the new run");
}

#[test]
fn one_run_at_a_time_and_quit_asks_while_running() {
    let t0 = Instant::now();
    let mut a = app(t0);
    a.update(Action::Down, t0);
    a.update(Action::Down, t0);
    assert_eq!(
        a.update(Action::RunSelected, t0),
        Some(Command::Start(Scope::Only {
            entry: 0,
            variant: "static".into()
        }))
    );
    assert_eq!(a.update(Action::RunAll, t0), None);
    assert_eq!(a.log.last().unwrap().level, Level::Warn);
    assert_eq!(a.update(Action::Quit, t0), None);
    assert_eq!(a.overlay, Some(Overlay::ConfirmQuit));
    assert_eq!(a.update(Action::No, t0), None);
    assert_eq!(a.overlay, None);
    a.update(Action::Quit, t0);
    assert_eq!(a.update(Action::Yes, t0), Some(Command::Quit));
    assert!(a.quitting && matches!(a.job, Job::Stopping { .. }));

    let mut idle = app(t0);
    assert_eq!(idle.update(Action::Quit, t0), Some(Command::Quit));
    let mut forced = app(t0);
    forced.update(Action::Help, t0);
    assert_eq!(forced.update(Action::ForceQuit, t0), Some(Command::Quit));
}

#[test]
fn navigation_clamps_and_panes_cycle() {
    let t0 = Instant::now();
    let mut a = app(t0);
    a.update(Action::Up, t0);
    assert_eq!(a.selected, 0);
    for _ in 0..9 {
        a.update(Action::Down, t0);
    }
    assert_eq!(a.selected, 4);
    let mut seen = vec![a.focus];
    for _ in 0..4 {
        a.update(Action::NextPane, t0);
        seen.push(a.focus);
    }
    assert_eq!(seen.first(), seen.last());
    assert_eq!(seen[1], Pane::Experiment);
    a.update(Action::PrevPane, t0);
    assert_eq!(a.focus, Pane::Log);
    a.update(Action::Help, t0);
    a.update(Action::Down, t0);
    assert_eq!(a.selected, 4, "keys under the help overlay do nothing");
    a.update(Action::Close, t0);
    assert_eq!(a.overlay, None);
}

#[test]
fn settings_changes_apply_to_the_next_run_and_are_described() {
    let t0 = Instant::now();
    let mut a = app(t0);
    a.update(Action::Settings, t0);
    a.update(Action::Left, t0); // threads 2 → 1
    a.update(Action::Left, t0); // stays at 1
    a.update(Action::Down, t0);
    a.update(Action::Left, t0); // warm-up 1 → 0
    a.update(Action::Left, t0); // stays at 0
    a.update(Action::Down, t0);
    a.update(Action::Right, t0); // runs 5 → 6
    a.update(Action::Close, t0);
    assert_eq!(
        a.settings.changes_from(&a.original),
        vec!["threads 2 → 1", "warm-up runs 1 → 0", "measured runs 5 → 6"]
    );
    let exp = a.experiment_for(&Scope::Only {
        entry: 0,
        variant: "static".into(),
    });
    assert_eq!(
        (exp.runtime.threads, exp.measure.warmup, exp.measure.runs),
        (1, 0, 6)
    );
    assert_eq!(exp.models.len(), 1);
    assert_eq!(
        exp.models[0].variants,
        vec![Variant::Recipe(crate::quant::Recipe::Static)]
    );
    let fp32 = a.experiment_for(&Scope::Only {
        entry: 0,
        variant: "fp32".into(),
    });
    assert!(fp32.models[0].variants.is_empty());
    assert_eq!(a.experiment_for(&Scope::All).models[0].variants.len(), 2);
}
