//! Rendering snapshots on ratatui's TestBackend, at 80×24 (collapsed panes) and 160×48 (every pane), from
//! a real report's rows. Time is fixed so clocks and ETAs are stable.

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::engine::{Event, Stage, Task};
use crate::tui::app::tests::{app, report};
use crate::tui::app::{Action, App};

fn render(app: &App, size: (u16, u16), now: Instant) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(size.0, size.1)).expect("test backend");
    t.draw(|f| super::draw(f, app, now)).expect("draws");
    t
}

/// Mid-run: whisper's FP32 and dynamic measured on the encoder, evaluating their fifth utterance.
fn mid_run(t0: Instant) -> App {
    let mut a = app(t0);
    a.update(Action::RunAll, t0);
    let done = report();
    for m in &done.rows[..2] {
        a.apply(
            Event::Opened {
                model: m.model.clone(),
                variant: m.variant.clone(),
                parts: m.parts.clone(),
                quantization: m.quantization.clone(),
            },
            t0,
        );
        a.apply(
            Event::Series {
                model: m.model.clone(),
                variant: m.variant.clone(),
                name: "encoder",
                series: Box::new(m.series["encoder"].clone()),
                speedup: m.speedup("encoder"),
            },
            t0,
        );
        a.apply(
            Event::Accuracy {
                model: m.model.clone(),
                variant: m.variant.clone(),
                metric: m.accuracy.metric,
                done: 3,
                total: 4,
                so_far: Some(0.125),
            },
            t0,
        );
    }
    a.apply(
        Event::Progress {
            task: Task::new("whisper-tiny.en", &["fp32", "dynamic"]),
            stage: Stage::Evaluate,
            done: 1,
            total: 4,
        },
        t0 + Duration::from_secs(40),
    );
    a.apply(
        Event::Progress {
            task: Task::new("whisper-tiny.en", &["fp32", "dynamic"]),
            stage: Stage::Evaluate,
            done: 3,
            total: 4,
        },
        t0 + Duration::from_secs(42),
    );
    a
}

/// Every row finished (both kinds), the row `selected` selected.
fn finished_at(t0: Instant, selected: usize) -> App {
    let mut a = app(t0);
    a.update(Action::RunAll, t0);
    for m in report().rows {
        a.apply(Event::RowDone(Box::new(m)), t0);
    }
    a.apply(
        Event::Warning("calibration: `x` in decoder_model.onnx never ran".into()),
        t0 + Duration::from_secs(90),
    );
    a.finish(crate::tui::app::Outcome::Done, t0 + Duration::from_secs(95));
    for _ in 0..selected {
        a.update(Action::Down, t0);
    }
    a
}

/// Every row finished, the dynamic row selected.
fn finished(t0: Instant) -> App {
    finished_at(t0, 1)
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
fn finished_blip_row_at_80x24() {
    let t0 = Instant::now();
    let a = finished_at(t0, 4);
    insta::assert_snapshot!(render(&a, (80, 24), t0 + Duration::from_secs(95)).backend());
}

#[test]
fn finished_blip_row_wide() {
    let t0 = Instant::now();
    let a = finished_at(t0, 4);
    let t = render(&a, (160, 48), t0 + Duration::from_secs(95));
    let screen = format!("{}", t.backend());
    // The BLIP group shows its own columns and its accuracy.
    for must in ["blip-easyvqa", "(blip)", "vqa ms", "cap ×", "VQA accuracy"] {
        assert!(screen.contains(must), "{must} missing:\n{screen}");
    }
    insta::assert_snapshot!(t.backend());
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

#[test]
fn accuracy_control_trajectory_grows_live() {
    use crate::results::control::{ControlStep, StepAction};
    let t0 = Instant::now();
    let mut a = mid_run(t0);
    let step = |step: usize, action: StepAction, reverted: usize, drop: f64| ControlStep {
        step,
        action,
        reverted,
        value: 0.06 + drop / 100.0,
        drop,
        within_budget: drop <= 0.3,
        seconds: 10.0 * (step + 1) as f64,
        latency_ms: Default::default(),
        speedup: Default::default(),
    };
    let steps = [
        step(0, StepAction::Start, 0, 6.85),
        step(
            1,
            StepAction::Revert {
                op: "model.decoder.layers.2.fc2/MatMul".into(),
            },
            1,
            5.02,
        ),
        step(
            2,
            StepAction::Revert {
                op: "model.decoder.layers.1.fc2/MatMul".into(),
            },
            2,
            0.0,
        ),
        step(
            3,
            StepAction::Requantize {
                op: "model.decoder.layers.1.fc2/MatMul".into(),
                kept: false,
            },
            1,
            5.02,
        ),
    ];
    for (i, s) in steps.into_iter().enumerate() {
        a.apply(
            Event::ControlStep {
                model: "whisper-tiny.en".into(),
                step: Box::new(s),
                eta_seconds: 30.0 - 10.0 * i as f64,
            },
            t0,
        );
    }
    let text = format!("{:?}", render(&a, (160, 48), t0).backend());
    assert!(text.contains("accuracy control"), "{text}");
    assert!(
        text.contains("4 models validated, 1 within budget"),
        "{text}"
    );
    insta::assert_snapshot!("accuracy_control_wide", render(&a, (160, 48), t0).backend());
}

#[test]
fn segments_of_a_long_recording_show_as_they_are_decoded() {
    use crate::results::longform::TimedText;
    let t0 = Instant::now();
    let mut a = mid_run(t0);
    let segment = |recording: &str, start: f64, text: &str| Event::Segment {
        model: "whisper-tiny.en".into(),
        variant: "fp32".into(),
        recording: recording.into(),
        segment: TimedText {
            start,
            end: start + 4.0,
            text: text.into(),
        },
    };
    a.apply(segment("read-15", 0.0, "a first recording"), t0);
    a.apply(segment("voices-22", 1.0, "Mister Ferrars was gone."), t0);
    a.apply(segment("voices-22", 65.5, "The second segment."), t0);
    let text = format!("{}", render(&a, (160, 48), t0).backend());
    assert!(text.contains("segments of voices-22"), "{text}");
    assert!(
        text.contains("0:01.0 → 0:05.0  Mister Ferrars was gone."),
        "{text}"
    );
    assert!(
        text.contains("1:05.5 → 1:09.5  The second segment."),
        "{text}"
    );
    assert!(!text.contains("a first recording"), "{text}");
    // The next pass over the same recording starts the list again.
    a.apply(
        segment("voices-22", 1.0, "Mister Ferrars was gone again."),
        t0,
    );
    let text = format!("{}", render(&a, (160, 48), t0).backend());
    assert!(!text.contains("The second segment."), "{text}");
    insta::assert_snapshot!(
        "long_form_segments_wide",
        render(&a, (160, 48), t0).backend()
    );
}
