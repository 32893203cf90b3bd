//! `gate` and `compare` on reports crafted from the committed baseline: exit codes, JUnit and summary
//! files, and every compare verdict (faster, slower, no change, accuracy drop, flipped verdict, missing
//! row, hash mismatch refused).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed baseline report (the default experiment).
fn baseline() -> Value {
    let dir = repo().join("reports/baseline");
    let json = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("reports/baseline holds a JSON report");
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

fn run(args: &[&str]) -> (i32, String, String) {
    let r = Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .args(args)
        .output()
        .expect("binary runs");
    (
        r.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    )
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A verdict every row passes, so the crafted report's gate depends only on what a test changes.
fn with_passing_verdicts(mut v: Value) -> Value {
    for row in v["rows"].as_array_mut().unwrap() {
        if row["variant"] != "fp32" {
            row["verdicts"] = serde_json::json!([
                {"check": "max_accuracy_drop_points", "limit": 100.0, "value": 0.1, "pass": true}
            ]);
        }
    }
    v
}

#[test]
fn gate_exit_codes_and_ci_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = with_passing_verdicts(baseline());
    let pass = write(dir.path(), "pass.json", &good);
    let (code, out, err) = run(&["gate", &s(&pass)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("gate: pass"), "{out}");

    let mut bad = good.clone();
    bad["rows"][2]["verdicts"][0]["pass"] = false.into();
    let fail = write(dir.path(), "fail.json", &bad);
    let junit = dir.path().join("junit.xml");
    let summary = dir.path().join("summary.md");
    let (code, _, err) = run(&[
        "gate",
        &s(&fail),
        "--junit",
        &s(&junit),
        "--summary",
        &s(&summary),
    ]);
    assert_eq!(code, 3, "{err}");
    let failed: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("threshold failed:"))
        .collect();
    assert_eq!(failed.len(), 1, "{err}");
    assert!(failed[0].contains("whisper-tiny.en static"), "{err}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let models = good["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model"].as_str().unwrap())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(xml.matches("<testsuite ").count(), models.len(), "{xml}");
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    assert!(
        xml.contains(r#"name="static max_accuracy_drop_points""#),
        "{xml}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("**FAIL** — 1 verdicts failed") && md.contains("| whisper-tiny.en | static |")
    );

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    let (code, _, err) = run(&["gate", &s(&garbage)]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: ") && err.contains("garbage.json"),
        "{err}"
    );
    let (code, _, err) = run(&["gate", &s(&dir.path().join("missing.json"))]);
    assert_eq!(code, 1);
    assert!(err.contains("missing.json"), "{err}");

    let mut partial = good.clone();
    partial["complete"] = false.into();
    partial["interrupted"] = "blip-base-shape".into();
    let partial = write(dir.path(), "partial.json", &partial);
    let (code, _, err) = run(&["gate", &s(&partial)]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("incomplete")
            && err.contains("blip-base-shape")
            && err.contains("--allow-incomplete"),
        "{err}"
    );
    let (code, _, err) = run(&["gate", &s(&partial), "--allow-incomplete"]);
    assert_eq!(code, 0, "{err}");
}

fn series_mut<'a>(v: &'a mut Value, row: usize, series: &str) -> &'a mut Value {
    &mut v["rows"][row]["series"][series]
}

/// Moves a series' median and CI by `factor`.
fn scale(v: &mut Value, row: usize, series: &str, factor: f64) {
    let s = series_mut(v, row, series);
    for key in ["median_ms", "mean_ms"] {
        s[key] = (s[key].as_f64().unwrap() * factor).into();
    }
    let ci = s["ci95_median_ms"].as_array().unwrap().clone();
    s["ci95_median_ms"] = ci
        .iter()
        .map(|x| Value::from(x.as_f64().unwrap() * factor))
        .collect();
}

#[test]
fn compare_says_faster_slower_no_change_and_what_else_changed() {
    let dir = tempfile::tempdir().unwrap();
    let old = with_passing_verdicts(baseline());
    let mut new = old.clone();
    // Row 1 (tiny.en dynamic): encoder 30 % faster, end_to_end 30 % slower, decoder_step 0.5 % slower.
    scale(&mut new, 1, "encoder", 0.7);
    scale(&mut new, 1, "end_to_end", 1.3);
    scale(&mut new, 1, "decoder_step", 1.005);
    // Row 2 (tiny.en static): WER up 2 points; its verdict now fails.
    let wer = new["rows"][2]["accuracy"]["value"].as_f64().unwrap();
    new["rows"][2]["accuracy"]["value"] = (wer + 0.02).into();
    new["rows"][2]["verdicts"][0]["pass"] = false.into();
    // The blip-base-shape rows: one gone, the other measured on different data.
    let rows = new["rows"].as_array_mut().unwrap();
    let last = rows.len() - 1;
    rows[last - 1]["dataset_sha256"] = "0".repeat(64).into();
    rows.remove(last);
    let (old_p, new_p) = (
        write(dir.path(), "old.json", &old),
        write(dir.path(), "new.json", &new),
    );
    let md = dir.path().join("cmp.md");

    let (code, out, err) = run(&["compare", &s(&old_p), &s(&new_p), "--md", &s(&md)]);
    assert_eq!(
        code, 0,
        "without --fail-on the comparison is information: {err}"
    );
    assert_eq!(std::fs::read_to_string(&md).unwrap(), out);
    let line = |series: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("| whisper-tiny.en | dynamic | {series} |")))
            .unwrap_or_else(|| panic!("no {series} line in\n{out}"))
            .to_string()
    };
    assert!(
        line("encoder").ends_with("| **faster** |"),
        "{}",
        line("encoder")
    );
    assert!(
        line("end_to_end").ends_with("| **slower** |"),
        "{}",
        line("end_to_end")
    );
    assert!(
        line("decoder_step").ends_with("| no change |"),
        "{}",
        line("decoder_step")
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("| whisper-tiny.en | fp32 | encoder |")
                && l.ends_with("| no change |")),
        "{out}"
    );
    assert!(
        out.contains("| whisper-tiny.en | static | WER |") && out.contains("| +2.00 |"),
        "{out}"
    );
    assert!(
        out.contains("whisper-tiny.en static `max_accuracy_drop_points`: pass → FAIL"),
        "{out}"
    );
    assert!(
        out.contains("## Rows only in the old report\n\n- blip-base-shape seed"),
        "{out}"
    );
    assert!(
        out.contains("- blip-base-shape fp32: dataset hashes differ"),
        "{out}"
    );
    assert!(err.contains("blip-base-shape fp32 not compared"), "{err}");
    assert!(
        !out.contains("| blip-base-shape | fp32 | vision |"),
        "a refused row is not compared: {out}"
    );

    let (code, out, _) = run(&["compare", &s(&old_p), &s(&new_p), "--force"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("| blip-base-shape | fp32 | vision |"),
        "--force compares it: {out}"
    );

    let (code, _, err) = run(&["compare", &s(&old_p), &s(&new_p), "--fail-on", "regression"]);
    assert_eq!(code, 3, "{err}");
    let regressions: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("regression:"))
        .collect();
    assert_eq!(
        regressions.len(),
        3,
        "end_to_end, WER, the flipped verdict: {err}"
    );

    // Same report twice: nothing changed, nothing regressed; another CPU is warned about.
    let mut moved = old.clone();
    moved["environment"]["cpu_model"] = "Another CPU".into();
    let moved = write(dir.path(), "moved.json", &moved);
    let (code, out, err) = run(&[
        "compare",
        &s(&old_p),
        &s(&moved),
        "--fail-on",
        "regression",
        "--noise",
        "5%",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("**faster**") && !out.contains("**slower**"),
        "{out}"
    );
    assert!(err.contains("warning: environments differ: CPU"), "{err}");
    let (code, _, err) = run(&["compare", &s(&old_p), &s(&moved), "--noise", "abc"]);
    assert_eq!(code, 2, "{err}");
}
