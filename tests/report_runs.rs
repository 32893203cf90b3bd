//! Real `report` runs on Whisper tiny.en (and blip-easyvqa as a long second entry): a SIGINT mid-run
//! writes a partial report and exits 130; a clip that does not decode is recorded as failed and the run
//! goes on (or stops, with `stop_on_error`); `--check-repro` finds a changed calibration seed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quantbench::results::ExperimentResult;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Two real clips and, with `broken`, a third file that is not audio, in a manifest under `dir`.
fn speech(dir: &Path, broken: bool) -> PathBuf {
    let src = repo().join("datasets/speech-en/manifest.jsonl");
    let text = std::fs::read_to_string(src).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .take(2)
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let audio = repo()
                .join("datasets/speech-en")
                .join(v["audio"].as_str().unwrap());
            v["audio"] = audio.display().to_string().into();
            v.to_string()
        })
        .collect();
    if broken {
        let bad = dir.join("broken.wav");
        std::fs::write(&bad, b"RIFF\x10\0\0\0WAVEnot really audio").unwrap();
        lines.insert(
            1,
            serde_json::json!({"audio": bad.display().to_string(), "text": "nothing"}).to_string(),
        );
    }
    let m = dir.join("speech.jsonl");
    std::fs::write(&m, lines.join("\n") + "\n").unwrap();
    m
}

fn experiment(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("exp.toml");
    std::fs::write(
        &p,
        format!("name = \"t\"\n[measure]\nwarmup = 0\nruns = 3\ne2e_passes = 1\n{body}"),
    )
    .unwrap();
    p
}

fn report(config: &Path, out: &Path, extra: &[&str]) -> (i32, String, String) {
    let r = Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .args(["report", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("binary runs");
    (
        r.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    )
}

fn json_in(out: &Path) -> (PathBuf, ExperimentResult) {
    let mut found: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    found.sort();
    let names: Vec<String> = found
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(found.len(), 2, "markdown and JSON, nothing else: {names:?}");
    let json = found
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let r = ExperimentResult::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (json, r)
}

#[test]
fn sigint_mid_run_writes_the_finished_rows_as_a_partial_report_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let m = speech(dir.path(), false);
    let config = experiment(
        dir.path(),
        &format!(
            "[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"{}\"\nvariants = []\n\n\
             [[models]]\nmodel = \"blip-easyvqa\"\ndataset = \"easy-vqa:test\"\nvariants = []\nlimit = 10\nlatency_samples = 1000000\n",
            m.display()
        ),
    );
    let out = dir.path().join("reports");
    let mut child = Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .args(["report", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Progress lines name the entry being measured: once blip-easyvqa's vision series runs, Whisper's row
    // is finished.
    let mut seen = Vec::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = Instant::now();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let measuring_blip = line.starts_with("blip-easyvqa") && line.contains("vision");
        seen.push(line);
        if measuring_blip {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "{seen:?}");
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen:?}\n{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("partial report written")),
        "{rest:?}"
    );
    let (_, r) = json_in(&out);
    assert!(!r.complete);
    assert_eq!(r.interrupted.as_deref(), Some("blip-easyvqa"));
    let rows: Vec<(&str, &str)> = r
        .rows
        .iter()
        .map(|r| (r.model.as_str(), r.variant.as_str()))
        .collect();
    assert_eq!(rows, [("whisper-tiny.en", "fp32")]);
    assert!(r.rows[0].accuracy.value.is_some());
    // The temp files of the interrupted run are gone.
    let cache = quantbench::assets::Cache::new(None, None)
        .root
        .join("quantized");
    let pid_tag = format!("-{pid}-");
    let left: Vec<String> = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&pid_tag))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_clip_that_does_not_decode_is_recorded_and_the_run_goes_on_unless_stop_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = speech(dir.path(), true);
    let entry = format!(
        "[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"{}\"\nvariants = []\n",
        m.display()
    );
    let config = experiment(dir.path(), &entry);
    let out = dir.path().join("reports");
    let (code, _, err) = report(&config, &out, &[]);
    assert_eq!(code, 0, "{err}");
    let (_, r) = json_in(&out);
    let row = &r.rows[0];
    assert_eq!(row.failed_items.len(), 1, "{:?}", row.failed_items);
    assert!(row.failed_items[0].item.ends_with("broken.wav"));
    assert!(!row.failed_items[0].error.is_empty());
    assert_eq!(row.accuracy.n, Some(2), "the two real clips are evaluated");
    assert!(row
        .warnings
        .iter()
        .any(|w| w.contains("1 dataset items failed")));

    let stop = dir.path().join("stop.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &stop,
        text.replacen("[measure]\n", "[measure]\nstop_on_error = true\n", 1),
    )
    .unwrap();
    let out2 = dir.path().join("reports2");
    let (code, _, err) = report(&stop, &out2, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("broken.wav"),
        "{err}"
    );
    assert!(!out2.exists(), "nothing written");
}

#[test]
fn check_repro_finds_nothing_on_a_rerun_and_names_a_changed_seed() {
    let dir = tempfile::tempdir().unwrap();
    let m = speech(dir.path(), false);
    let entry =
        |seed: u64| {
            format!(
            "[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"{}\"\nvariants = [\"static\"]\n\
             calibration = \"{}\"\n[models.static]\ncalibration_size = 2\nseed = {seed}\n",
            m.display(),
            repo().join("datasets/speech-calib/manifest.jsonl").display()
        )
        };
    let config = experiment(dir.path(), &entry(0));
    let out = dir.path().join("a");
    let (code, _, err) = report(&config, &out, &[]);
    assert_eq!(code, 0, "{err}");
    let (first, r) = json_in(&out);
    assert!(r.complete && !r.config_sha256.is_empty() && r.config.contains("seed = 0"));
    assert!(r.command_line.iter().any(|a| a == "report"));
    let files: Vec<&str> = r.rows[1].files.iter().map(|f| f.file.as_str()).collect();
    for f in [
        "encoder_model.onnx",
        "tokenizer.json",
        "config.json",
        "quantization.json",
    ] {
        assert!(files.contains(&f), "{f} hashed: {files:?}");
    }

    let (code, out_text, err) = report(
        &config,
        &dir.path().join("b"),
        &["--check-repro", &first.display().to_string()],
    );
    assert_eq!(code, 0, "the same config reproduces: {err}");
    assert!(
        out_text.contains("reproduced: no difference outside latency"),
        "{out_text}"
    );

    let config = experiment(dir.path(), &entry(1));
    let (code, _, err) = report(
        &config,
        &dir.path().join("c"),
        &["--check-repro", &first.display().to_string()],
    );
    assert_eq!(code, 3, "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("not reproduced:"))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("config_sha256")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("whisper-tiny.en static")
            && l.contains("seed")
            && l.contains("0 → 1")),
        "{lines:?}"
    );
}
