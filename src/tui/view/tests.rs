//! Rendering snapshots on ratatui's TestBackend, at 80×24 (collapsed panes) and 160×48 (every pane), from
//! a real report's rows. Time is fixed so clocks and ETAs are stable.

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::engine::{Event, Stage, Task};
use crate::measure::stats::Summary;
use crate::tui::app::tests::{app, report};
use crate::tui::app::{Action, App};

fn render(app: &App, size: (u16, u16), now: Instant) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(size.0, size.1)).expect("test backend");
    t.draw(|f| super::draw(f, app, now)).expect("draws");
    t
}

/// The first `n` utterances of a finished row, as the engine reports them.
fn transcribed(a: &mut App, m: &crate::results::ModelResult, n: usize, t0: Instant) {
    for (i, item) in m.accuracy.items.iter().take(n).enumerate() {
        let event = Event::Item {
            model: m.model.clone(),
            variant: m.variant.clone(),
            index: i,
            item: item.clone(),
        };
        a.apply(event, t0);
    }
}

/// Mid-run: FP32 and dynamic measured on the encoder, evaluating their third utterance.
fn mid_run(t0: Instant) -> App {
    let mut a = app(t0);
    a.update(Action::RunAll, t0);
    let done = report();
    for m in &done.models[..2] {
        a.apply(
            Event::Opened {
                model: m.model.clone(),
                variant: m.variant.clone(),
                parts: m.parts.clone(),
                quantization: m.quantization.clone(),
            },
            t0,
        );
        let samples: Vec<f64> = (0..5)
            .map(|i| m.latency.encoder_ms.median + i as f64)
            .collect();
        a.apply(
            Event::Series {
                model: m.model.clone(),
                variant: m.variant.clone(),
                stage: Stage::MeasureEncoder,
                summary: Summary::of(&samples).unwrap(),
                samples_ms: samples,
                speedup: (m.variant != "fp32").then_some(1.44),
            },
            t0,
        );
        transcribed(&mut a, m, 3, t0);
    }
    a.apply(
        Event::Progress {
            task: Task::new("whisper-tiny.en", &["fp32", "dynamic"]),
            stage: Stage::Evaluate,
            done: 3,
            total: 25,
        },
        t0 + Duration::from_secs(40),
    );
    a.apply(
        Event::Progress {
            task: Task::new("whisper-tiny.en", &["fp32", "dynamic"]),
            stage: Stage::Evaluate,
            done: 5,
            total: 25,
        },
        t0 + Duration::from_secs(42),
    );
    a
}

/// Every row finished, the dynamic row selected.
fn finished(t0: Instant) -> App {
    let mut a = app(t0);
    a.update(Action::RunAll, t0);
    for m in report().models {
        transcribed(&mut a, &m, m.accuracy.items.len(), t0);
        a.apply(Event::ModelDone(Box::new(m)), t0);
    }
    a.apply(
        Event::Warning("calibration: `x` in decoder_model.onnx never ran".into()),
        t0 + Duration::from_secs(90),
    );
    a.finish(crate::tui::app::Outcome::Done, t0 + Duration::from_secs(95));
    a.update(Action::Down, t0);
    a
}

#[test]
fn idle_at_80x24() {
    let t0 = Instant::now();
    insta::assert_snapshot!(render(&app(t0), (80, 24), t0).backend());
}

#[test]
fn mid_run_at_80x24() {
    let t0 = Instant::now();
    let a = mid_run(t0);
    insta::assert_snapshot!(render(&a, (80, 24), t0 + Duration::from_secs(42)).backend());
}

#[test]
fn mid_run_wide() {
    let t0 = Instant::now();
    let a = mid_run(t0);
    insta::assert_snapshot!(render(&a, (160, 48), t0 + Duration::from_secs(42)).backend());
}

#[test]
fn finished_wide() {
    let t0 = Instant::now();
    let a = finished(t0);
    insta::assert_snapshot!(render(&a, (160, 48), t0 + Duration::from_secs(95)).backend());
}

#[test]
fn finished_at_80x24_without_colour_brackets_differing_words() {
    let t0 = Instant::now();
    let mut a = finished(t0);
    a.color = false;
    insta::assert_snapshot!(render(&a, (80, 24), t0 + Duration::from_secs(95)).backend());
}

#[test]
fn experiment_and_log_tabs_at_80x24() {
    let t0 = Instant::now();
    let mut a = finished(t0);
    a.update(Action::NextPane, t0);
    let grid = render(&a, (80, 24), t0);
    a.update(Action::NextPane, t0);
    a.update(Action::NextPane, t0);
    let log = render(&a, (80, 24), t0);
    insta::assert_snapshot!("experiment_tab", grid.backend());
    insta::assert_snapshot!("log_tab", log.backend());
}

#[test]
fn overlays_at_80x24() {
    let t0 = Instant::now();
    let mut a = mid_run(t0);
    a.update(Action::Quit, t0);
    insta::assert_snapshot!("confirm_quit", render(&a, (80, 24), t0).backend());
    a.update(Action::No, t0);
    a.update(Action::Help, t0);
    insta::assert_snapshot!("help", render(&a, (80, 24), t0).backend());
    a.update(Action::Close, t0);
    a.update(Action::Settings, t0);
    a.update(Action::Right, t0);
    insta::assert_snapshot!("settings", render(&a, (80, 24), t0).backend());
}

#[test]
fn tiny_terminals_do_not_panic() {
    let t0 = Instant::now();
    let a = finished(t0);
    for size in [(1, 1), (20, 5), (40, 10), (79, 23), (300, 100)] {
        render(&a, size, t0);
    }
}

#[test]
fn status_cells_fit_their_longest_label() {
    let t0 = Instant::now();
    let mut a = app(t0);
    a.apply(
        Event::Progress {
            task: Task::new("whisper-tiny.en", &["static"]),
            stage: Stage::Calibrate,
            done: 2,
            total: 12,
        },
        t0,
    );
    for size in [(80, 24), (120, 36), (160, 48)] {
        let t = render(&a, size, t0);
        let screen = format!("{}", t.backend());
        assert!(screen.contains("▶ calibrating"), "{size:?}:\n{screen}");
    }
}
