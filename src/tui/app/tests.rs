//! Events in → state out, and actions → commands.

use std::time::{Duration, Instant};

use super::*;
use crate::engine::{Event, Stage, Task};
use crate::results::{ExperimentResult, ItemResult};

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
"#;

pub(crate) fn app(t0: Instant) -> App {
    let exp: Experiment = toml::from_str(EXPERIMENT).expect("experiment parses");
    App::new(exp, "quantbench.toml".into(), 2, t0)
}

/// The rows of a real `quantbench report` run (tiny.en: fp32, dynamic, static).
pub(crate) fn report() -> ExperimentResult {
    serde_json::from_str(include_str!("../../../tests/fixtures/tui-report.json"))
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

fn item(reference: &str, hypothesis: &str, errors: usize) -> Event {
    Event::Item {
        model: "whisper-tiny.en".into(),
        variant: "dynamic".into(),
        index: 0,
        item: ItemResult {
            audio: "a.wav".into(),
            reference: reference.into(),
            hypothesis: hypothesis.into(),
            latency_ms: 1.0,
            word_errors: errors,
            reference_words: reference.split_whitespace().count(),
        },
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
            ("whisper-tiny.en", "static")
        ]
    );
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
        progress(&["fp32", "dynamic", "static"], Stage::MeasureEncoder, 1, 5),
        t1,
    );
    assert!(a.rows.iter().all(|r| r.status == Status::Measuring));
    // First heard of at 1 of 5: it began when the calibration's last event came.
    assert_eq!(
        a.running.as_ref().unwrap().stage_started,
        t0 + Duration::from_secs(5)
    );
    a.apply(
        progress(&["fp32"], Stage::MeasureEndToEnd, 0, 5),
        t1 + Duration::from_secs(1),
    );
    assert_eq!(
        a.running.as_ref().unwrap().stage_started,
        t1 + Duration::from_secs(1)
    );
}

#[test]
fn items_accumulate_the_running_wer_and_mark_differing_words() {
    let t0 = Instant::now();
    let mut a = app(t0);
    a.apply(item("the cat sat", "the bat sat", 1), t0);
    a.apply(item("a b c d", "a b c d", 0), t0);
    a.apply(item("one two", "", 2), t0);
    let r = &a.rows[1];
    assert_eq!(r.running_wer(), Some(3.0 / 9.0));
    let worst = r.worst(3);
    assert_eq!(worst.len(), 2, "error-free utterances are not listed");
    assert_eq!(worst[0].word_errors, 2);
    let marked: Vec<&str> = worst[1]
        .hypothesis
        .iter()
        .filter(|(_, m)| *m)
        .map(|(w, _)| w.as_str())
        .collect();
    assert_eq!(marked, vec!["bat"]);
}

#[test]
fn series_and_finished_rows_fill_the_table() {
    let t0 = Instant::now();
    let mut a = app(t0);
    let samples = vec![3.0, 1.0, 2.0];
    a.apply(
        Event::Series {
            model: "whisper-tiny.en".into(),
            variant: "dynamic".into(),
            stage: Stage::MeasureEncoder,
            summary: crate::measure::stats::Summary::of(&samples).unwrap(),
            samples_ms: samples.clone(),
            speedup: Some(1.5),
        },
        t0,
    );
    let enc = a.rows[1].encoder.as_ref().unwrap();
    assert_eq!((enc.summary.median, enc.speedup), (2.0, Some(1.5)));
    assert!(a.finished_rows().is_empty());
    for m in report().models.into_iter().rev() {
        a.apply(Event::ModelDone(Box::new(m)), t0);
    }
    assert!(a.rows.iter().all(|r| r.status == Status::Done));
    let order: Vec<String> = a.finished_rows().into_iter().map(|m| m.variant).collect();
    assert_eq!(order, vec!["fp32", "dynamic", "static"], "experiment order");
    assert_eq!(
        a.rows[1].bytes(),
        Some(a.finished_rows()[1].parts.iter().map(|p| p.bytes).sum())
    );
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
    for _ in 0..5 {
        a.update(Action::Down, t0);
    }
    assert_eq!(a.selected, 2);
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
    assert_eq!(a.selected, 2, "keys under the help overlay do nothing");
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
    assert_eq!(exp.models[0].variants, vec!["static"]);
    let fp32 = a.experiment_for(&Scope::Only {
        entry: 0,
        variant: "fp32".into(),
    });
    assert!(fp32.models[0].variants.is_empty());
    assert_eq!(a.experiment_for(&Scope::All).models[0].variants.len(), 2);
}
