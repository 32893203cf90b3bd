//! The command-line contract on the real model: output formats and the JSON fields users script against.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_ok(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("binary runs");
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{args:?} failed\nstdout: {so}\nstderr: {se}"
    );
    (so, se)
}

#[test]
fn transcribe_prints_file_tab_text() {
    let a = "datasets/speech-en/librispeech/1995-1837-0001.wav";
    let b = "datasets/speech-en/librispeech/2412-153948-0000.flac";
    let (out, _) = run_ok(&["transcribe", "--model", "whisper-tiny.en", a, b]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let (f, text) = lines[1].split_once('\t').expect("FILE<TAB>TEXT");
    assert_eq!(f, b);
    assert!(text.starts_with("If the reader will excuse me"), "{text}");
}

#[test]
fn eval_json_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("eval.json");
    let (out, err) = run_ok(&[
        "eval",
        "--model",
        "whisper-tiny.en",
        "--manifest",
        "datasets/speech-en/manifest.jsonl",
        "--limit",
        "3",
        "--json",
        &json.display().to_string(),
    ]);
    assert!(out.contains("WER"), "{out}");
    // stdout is a pipe here: progress must come as plain lines on stderr, no carriage returns.
    assert!(!err.contains('\r') && err.contains("evaluate 3/3"), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["n"], 3);
    for k in ["wer", "cer"] {
        let x = v[k].as_f64().unwrap();
        assert!((0.0..1.0).contains(&x), "{k} = {x}");
    }
    for k in ["median_ms", "mean_ms", "min_ms", "max_ms", "stddev_ms"] {
        assert!(
            v["latency_ms"][k].as_f64().unwrap() >= 0.0,
            "latency_ms.{k}"
        );
    }
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for it in items {
        for k in ["audio", "reference", "hypothesis"] {
            assert!(!it[k].as_str().unwrap().is_empty(), "item.{k}");
        }
        assert!(it["latency_ms"].as_f64().unwrap() > 0.0);
    }
    // WER is total word edits over total reference words of the same items.
    let edits: u64 = items
        .iter()
        .map(|i| i["word_errors"].as_u64().unwrap())
        .sum();
    let words: u64 = items
        .iter()
        .map(|i| i["reference_words"].as_u64().unwrap())
        .sum();
    assert!((v["wer"].as_f64().unwrap() - edits as f64 / words as f64).abs() < 1e-12);
}

#[test]
fn report_writes_markdown_and_json_with_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("small.toml");
    let manifest = repo().join("datasets/speech-en/manifest.jsonl");
    std::fs::write(
        &cfg,
        format!(
            "name = \"small\"\n[runtime]\nthreads = 1\n[measure]\nwarmup = 1\nruns = 2\ndecoder_cache_len = 8\ne2e_passes = 1\n\
             [[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"{}\"\nlimit = 2\n",
            manifest.display()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("reports");
    let (out, _) = run_ok(&[
        "report",
        "--config",
        &cfg.display().to_string(),
        "--out",
        &out_dir.display().to_string(),
    ]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let (json_path, md_path) = (&files[0], &files[1]);
    assert!(
        json_path.to_string_lossy().ends_with("-small.json")
            && md_path.to_string_lossy().ends_with("-small.md")
    );
    assert!(out.contains(&*md_path.to_string_lossy()));

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json_path).unwrap()).unwrap();
    let env = &v["environment"];
    assert_eq!(env["threads"], 1);
    assert_eq!(env["ort_version"], "1.31.1");
    assert!(!env["cpu_model"].as_str().unwrap().is_empty());
    assert!(env["git_commit"].is_string() && env["quantbench_version"].is_string());
    assert_eq!(v["schema"], "quantbench.report/2");
    assert_eq!(v["complete"], true);
    let m = &v["rows"][0];
    assert_eq!(m["model"], "whisper-tiny.en");
    assert_eq!(m["kind"], "whisper");
    assert_eq!(
        m["source_sha256"],
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
    );
    assert_eq!(m["dataset_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(m["accuracy"]["n"], 2);
    assert_eq!(m["accuracy"]["metric"], "wer");
    let enc = &m["series"]["encoder"];
    assert_eq!(enc["n"], 2);
    assert_eq!(enc["runs_ms"].as_array().unwrap().len(), 2);
    assert!(enc["p99_ms"].is_null(), "p99 needs 100 runs");
    assert_eq!(enc["ci95_median_ms"].as_array().unwrap().len(), 2);
    assert_eq!(
        m["series"]["end_to_end"]["tokens"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(m["setup"]["decoder_cache_len"], 8);
    let outside = m["setup"]["end_to_end_outside_ort_share"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&outside), "{outside}");
    assert_eq!(m["parts"].as_array().unwrap().len(), 3);

    // The markdown carries the same numbers, and stdout the one-screen summary.
    let md = std::fs::read_to_string(md_path).unwrap();
    let wer = format!("{:.2} %", m["accuracy"]["value"].as_f64().unwrap() * 100.0);
    assert!(md.contains(&format!("WER {wer} on 2 items")), "{md}");
    let median = format!("{:.2}", enc["median_ms"].as_f64().unwrap());
    assert!(md.contains(&median), "{md}");
    assert!(
        out.contains("whisper-tiny.en (whisper)") && out.contains(&format!("WER {wer}")),
        "{out}"
    );
}

#[test]
fn convert_is_deterministic_and_its_output_is_a_model_folder() {
    let ctx_cache = quantbench::assets::Cache::new(None, None);
    let asset = ctx_cache.ensure("whisper-tiny.en", &mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let ct2 = asset.join("ct2").display().to_string();
    run_ok(&["convert", &ct2, &a.display().to_string()]);
    run_ok(&["convert", &ct2, &b.display().to_string()]);
    for f in [
        "encoder_model.onnx",
        "decoder_model.onnx",
        "decoder_with_past_model.onnx",
        "config.json",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
    let clip = "datasets/speech-en/librivox/sense_and_sensibility_01_austen_64kb-0880.wav";
    let (out, _) = run_ok(&["transcribe", "--model", &a.display().to_string(), clip]);
    assert!(out.contains("young man"), "{out}");
}

#[test]
fn quantize_writes_a_verified_folder_with_its_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny-int8");
    let (stdout, _) = run_ok(&[
        "quantize",
        "--model",
        "whisper-tiny.en",
        "--recipe",
        "dynamic",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(
        stdout.contains(
            "encoder_model.onnx: 25 of 81 ops quantized; fused 6 × Gelu, 4 × MultiHeadAttention, 1 × im2col MatMul (Conv1d)"
        ),
        "{stdout}"
    );
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("quantization.json")).unwrap())
            .unwrap();
    assert_eq!(side["recipe"], "dynamic");
    assert_eq!(side["parts"].as_array().unwrap().len(), 3);
    let enc = &side["parts"][0];
    assert_eq!(enc["file"], "encoder_model.onnx");
    // 24 projections and the second conv stem, lowered to a MatMul (the first reads the spectrogram).
    assert_eq!(enc["ops"]["MatMul"]["quantized"], 25);
    assert_eq!(enc["fusions"]["im2col MatMul (Conv1d)"], 1);
    assert_eq!(enc["fusions"]["MultiHeadAttention"], 4);
    assert_eq!(enc["fusions"]["Gelu"], 6);
    // The decoders' vocabulary projection is block-wise 4-bit with its top candidates rescored (it is
    // tied to the embedding); their attention is left to the plain kernels (masked, cached), their
    // GELUs fused.
    assert_eq!(side["parts"][2]["fusions"]["Gelu"], 4);
    assert!(side["parts"][2]["fusions"]["MultiHeadAttention"].is_null());
    assert!(side["parameters"]["vocabulary_projection"]
        .as_str()
        .unwrap()
        .contains("MatMulNBits"));
    let decoder = quantbench::onnx::read_model(&out.join("decoder_with_past_model.onnx")).unwrap();
    let nbits: Vec<_> = decoder
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .filter(|n| n.op_type() == "MatMulNBits")
        .flat_map(|n| {
            n.attribute
                .iter()
                .filter(|a| a.name() == "bits")
                .map(|a| a.i())
        })
        .collect();
    assert_eq!(nbits, [4]);
    assert!(side["parameters"]["weights"]
        .as_str()
        .unwrap()
        .contains("per output channel"));
    // The folder is a model: it transcribes, and --force replaces it.
    let clip = "datasets/speech-en/librivox/sense_and_sensibility_01_austen_64kb-0930.wav";
    let (t, _) = run_ok(&["transcribe", "--model", &out.display().to_string(), clip]);
    assert!(t.to_lowercase().contains("amiable"), "{t}");
    run_ok(&[
        "quantize",
        "--model",
        "whisper-tiny.en",
        "--recipe",
        "dynamic",
        "--out",
        &out.display().to_string(),
        "--force",
    ]);
}

#[test]
fn report_exits_3_when_a_threshold_fails_and_still_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gate.toml");
    let manifest = repo().join("datasets/speech-en/manifest.jsonl");
    std::fs::write(
        &cfg,
        format!(
            "name = \"gate\"\n[measure]\nwarmup = 0\nruns = 1\ndecoder_cache_len = 4\ne2e_passes = 1\n\
             [[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"{}\"\nlimit = 1\nvariants = [\"dynamic\"]\n\
             [models.thresholds]\nmin_end_to_end_speedup = 100.0\nmax_accuracy_drop_points = 100.0\n",
            manifest.display()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("reports");
    let out = Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .args([
            "report",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &out_dir.display().to_string(),
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("threshold failed: whisper-tiny.en dynamic: min_speedup.end_to_end 100"),
        "{err}"
    );
    assert!(
        !err.contains("threshold failed: whisper-tiny.en dynamic: max_accuracy_drop_points"),
        "the passing check is not reported as failed: {err}"
    );
    let json = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("the report is written even when the gate fails");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let verdicts = v["rows"][1]["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2);
    assert_eq!(verdicts[0]["check"], "max_accuracy_drop_points");
    assert_eq!(verdicts[0]["pass"], true);
    assert_eq!(verdicts[1]["check"], "min_speedup.end_to_end");
    assert_eq!(verdicts[1]["pass"], false);
}

#[test]
fn ignored_scope_is_applied_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no-gather");
    run_ok(&[
        "quantize",
        "--model",
        "whisper-tiny.en",
        "--recipe",
        "weights",
        "--ignore-type",
        "Gather",
        "--ignore-regex",
        "proj_out",
        "--out",
        &out.display().to_string(),
    ]);
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("quantization.json")).unwrap())
            .unwrap();
    assert_eq!(side["ignored_scope"]["types"][0], "Gather");
    let dec = &side["parts"][1];
    assert_eq!(dec["file"], "decoder_model.onnx");
    assert_eq!(dec["ops"]["Gather"]["quantized"], 0);
    let skipped = dec["left_in_float"].as_array().unwrap();
    assert!(!skipped.is_empty(), "{dec}");

    let o = Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .args([
            "quantize",
            "--model",
            "whisper-tiny.en",
            "--recipe",
            "weights",
            "--ignore-name",
            "no_such_node",
        ])
        .args(["--out", &dir.path().join("x").display().to_string()])
        .current_dir(repo())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no node named no_such_node"), "{err}");
    assert!(!dir.path().join("x").exists());
}

#[test]
fn static_quantize_calibrates_through_the_pipeline_deterministically_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let (stdout, stderr) = run_ok(&[
            "quantize",
            "--model",
            "whisper-tiny.en",
            "--recipe",
            "static",
            "--calib-size",
            "3",
            "--seed",
            "7",
            "--out",
            &out.display().to_string(),
        ]);
        assert!(stdout.contains("encoder_model.onnx: "), "{stdout}");
        assert!(stderr.contains("calibration statistics 3/3"), "{stderr}");
    }
    for f in [
        "encoder_model.onnx",
        "decoder_model.onnx",
        "decoder_with_past_model.onnx",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}: same clips and seed must give identical bytes"
        );
    }
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("quantization.json")).unwrap())
            .unwrap();
    assert_eq!(sidecar["recipe"], "static");
    assert_eq!(sidecar["calibration_clips"], 3);
    assert_eq!(sidecar["calibration_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(sidecar["parameters"]["static"]["estimator"], "mse");
    assert_eq!(sidecar["parameters"]["static"]["seed"], 7);
    let encoder = &sidecar["parts"][0];
    // 24 projections and the second conv stem, lowered to a MatMul whose bias is corrected too.
    assert_eq!(encoder["ops"]["MatMul"]["quantized"], 25);
    assert_eq!(encoder["bias_corrected"], 21);
    // The folder is a model: it transcribes.
    let clip = repo().join("datasets/speech-en/librispeech/1995-1837-0001.wav");
    let (text, _) = run_ok(&[
        "transcribe",
        "--model",
        &a.display().to_string(),
        &clip.display().to_string(),
    ]);
    assert!(text.to_lowercase().contains("sorrow of his life"), "{text}");
}
