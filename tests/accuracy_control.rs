//! Quantization with accuracy control end to end, on the trained blip-easyvqa with a recipe made to hurt:
//! a budget it cannot meet within the revert limit exits 3 and keeps the best model found; the same
//! request twice gives the same trajectory and the same graph bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use quantbench::results::control::{AccuracyControl, StepAction};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `quantize --max-drop` into `out`: (exit code, stdout, stderr).
fn search(out: &Path, validate: &str, extra: &[&str]) -> (i32, String, String) {
    let o = out.display().to_string();
    let mut args = vec![
        "quantize",
        "--model",
        "blip-easyvqa",
        "--recipe",
        "static",
        "--calib-size",
        "20",
        "--estimator",
        "percentile:70",
        "--smooth-quant",
        "1.0",
        "--validate",
        validate,
        "--validate-size",
        "60",
        "--out",
        &o,
    ];
    args.extend_from_slice(extra);
    let r = Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .args(&args)
        .current_dir(repo())
        .output()
        .expect("binary runs");
    (
        r.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    )
}

fn record(dir: &Path) -> AccuracyControl {
    let text = std::fs::read_to_string(dir.join("accuracy_control.json")).expect("record written");
    serde_json::from_str(&text).expect("record parses")
}

fn graphs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".onnx"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_unmeetable_budget_exits_3_keeps_the_best_model_and_repeats_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let limits = ["--max-drop", "0.5", "--max-reverts", "3"];
    let (code, out, err) = search(&a, "easy-vqa:train", &limits);
    assert_eq!(code, 3, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("budget NOT met"), "{out}");
    assert!(err.contains("threshold failed: accuracy control"), "{err}");
    let r = record(&a);
    assert!(!r.met);
    assert_eq!(r.stopped_by.as_deref(), Some("max_reverts = 3 reached"));
    assert_eq!(r.trajectory[0].action, StepAction::Start);
    assert!(
        r.trajectory[0].drop > 0.5,
        "the recipe hurts: {:?}",
        r.trajectory[0]
    );
    // The kept model is the trajectory's smallest drop, and it is the one published.
    let best = r
        .trajectory
        .iter()
        .map(|s| s.drop)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(r.drop, best);
    assert_eq!(r.trajectory[r.chosen_step].drop, best);
    assert_eq!(r.reverted.len(), r.trajectory[r.chosen_step].reverted);
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("quantization.json")).unwrap())
            .unwrap();
    let names: Vec<String> =
        serde_json::from_value(sidecar["ignored_scope"]["names"].clone()).unwrap();
    assert_eq!(
        names, r.reverted,
        "the published model keeps exactly the reverted ops in float"
    );
    // Every step was measured against FP32 through the loop.
    assert!(r
        .trajectory
        .iter()
        .all(|s| s.latency_ms.contains_key("vision")));
    // The ranking and the per-op table cover every quantized op, ranked 1..n.
    assert!(r.ops.iter().enumerate().all(|(i, o)| o.rank == i + 1));
    assert_eq!(
        r.ops.iter().filter(|o| o.reverted).count(),
        r.reverted.len()
    );

    let (code, out, err) = search(&b, "easy-vqa:train", &limits);
    assert_eq!(code, 3, "stdout: {out}\nstderr: {err}");
    let s = record(&b);
    let strip = |r: &AccuracyControl| {
        r.trajectory
            .iter()
            .map(|s| {
                (
                    s.action.clone(),
                    s.reverted,
                    s.value,
                    s.drop,
                    s.within_budget,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&r), strip(&s));
    assert_eq!(r.ops, s.ops);
    assert_eq!(
        graphs(&a),
        graphs(&b),
        "the same request made different graphs"
    );
}

#[test]
fn bad_requests_get_one_error_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let (code, _, err) = search(&out, "no/such.jsonl", &["--max-drop", "0.5"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no/such.jsonl"), "{err}");
    assert!(!out.exists(), "nothing is published on an error");
    let (code, _, err) = search(&out, "easy-vqa:train", &["--max-drop=-1"]);
    assert_ne!(code, 0, "{err}");
    assert!(!out.exists());
}
