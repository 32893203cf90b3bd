//! Cache integrity and concurrent use (issue 15, classes 7 and 8): an entry whose files changed after it
//! was made is found by `cache verify` and rebuilt when opened; cache keys cover every file of a user's
//! folder and the per-part recipes; two processes building one entry both succeed; `--force` replaces only
//! quantbench's own folders. Each test works in a private cache whose pinned assets are links into the
//! shared one (fetched on first use).

use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(cache: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_quantbench"))
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(r: Run) -> Run {
    assert_eq!(
        r.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        r.stdout,
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r
}

/// A private cache holding links to the shared cache's runtime and tiny.en.
fn private_cache() -> tempfile::TempDir {
    let shared = quantbench::assets::Cache::new(None, None);
    for name in ["onnxruntime", "whisper-tiny.en"] {
        shared.ensure(name, &mut |_| {}).expect("asset fetched");
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["onnxruntime", "whisper-tiny.en"] {
        std::os::unix::fs::symlink(shared.root.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// The INT8 folder `quantize` printed last.
fn made(r: &Run) -> PathBuf {
    PathBuf::from(r.stdout.lines().last().expect("a folder is printed"))
}

/// `quantize --model MODEL --recipe RECIPE EXTRA…`, which must succeed; the folder it made.
fn quantize(cache: &Path, model: &str, recipe: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["quantize", "--model", model, "--recipe", recipe];
    args.extend_from_slice(extra);
    made(&ok(run(cache, &args)))
}

fn clip() -> String {
    "datasets/speech-en/librispeech/2412-153948-0000.flac".into()
}

#[test]
fn a_changed_cached_int8_folder_is_found_by_verify_and_rebuilt_on_open() {
    let cache = private_cache();
    let c = cache.path();
    let dir = quantize(c, "whisper-tiny.en", "weights", &[]);
    assert!(dir.join(quantbench::assets::entry::SEAL_FILE).is_file());
    ok(run(c, &["cache", "verify"]));

    // A same-size replacement: one byte of the encoder's weights flipped.
    let graph = dir.join("encoder_model.onnx");
    let mut bytes = std::fs::read(&graph).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&graph, &bytes).unwrap();
    let v = run(c, &["cache", "verify"]);
    assert_eq!(v.code, Some(1), "{}{}", v.stdout, v.stderr);
    assert!(
        v.stdout
            .lines()
            .any(|l| l.starts_with("changed") && l.contains("encoder_model.onnx has sha256")),
        "{}",
        v.stdout
    );
    assert!(
        v.stderr.starts_with("error: 1 cache entries do not match"),
        "{}",
        v.stderr
    );

    let t = ok(run(
        c,
        &[
            "transcribe",
            "--model",
            "whisper-tiny.en",
            "--variant",
            "weights",
            &clip(),
        ],
    ));
    assert!(
        t.stderr.contains("changed after quantbench made it")
            && t.stderr.contains("making it again"),
        "{}",
        t.stderr
    );
    assert!(t.stdout.contains("my native country"), "{}", t.stdout);
    ok(run(c, &["cache", "verify"]));
}

#[test]
fn cache_keys_cover_every_file_of_a_users_folder_and_the_per_part_recipes() {
    let cache = private_cache();
    let c = cache.path();
    // A user's copy of tiny.en's ONNX folder (hard links, then one file rewritten).
    quantize(c, "whisper-tiny.en", "dynamic", &[]);
    let fp32 = std::fs::read_dir(c.join("whisper-tiny.en/"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("onnx-fp32-")
        })
        .expect("the conversion");
    let user = tempfile::tempdir().unwrap();
    let model = user.path().join("tiny-copy");
    std::fs::create_dir(&model).unwrap();
    for e in std::fs::read_dir(&fp32).unwrap().flatten() {
        if !e.file_name().to_string_lossy().starts_with('.') {
            std::fs::hard_link(e.path(), model.join(e.file_name())).unwrap();
        }
    }
    let m = model.display().to_string();
    let first = quantize(c, &m, "dynamic", &[]);
    let again = quantize(c, &m, "dynamic", &["--force"]);
    assert_eq!(first, again, "the same folder and options, the same entry");

    // config.json rewritten (same values, other formatting): another source, another entry.
    let config = model.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::remove_file(&config).unwrap();
    std::fs::write(&config, format!("{text}\n")).unwrap();
    let changed = quantize(c, &m, "dynamic", &[]);
    assert_ne!(
        first, changed,
        "a changed config.json must not reuse the old INT8 folder"
    );

    // A per-part recipe is part of the key of an uncalibrated recipe too.
    let parted = quantize(
        c,
        &m,
        "dynamic",
        &["--part", "decoder_with_past_model=weights"],
    );
    assert_ne!(changed, parted);
}

#[test]
fn two_processes_building_one_entry_both_succeed_and_force_replaces_only_quantbench_folders() {
    let cache = private_cache();
    let c = cache.path().to_path_buf();
    let spawn = |c: PathBuf| {
        std::thread::spawn(move || {
            run(
                &c,
                &[
                    "quantize",
                    "--model",
                    "whisper-tiny.en",
                    "--recipe",
                    "dynamic",
                ],
            )
        })
    };
    let (a, b) = (spawn(c.clone()), spawn(c.clone()));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let (a, b) = (ok(a), ok(b));
    assert_eq!(made(&a), made(&b));
    ok(run(&c, &["cache", "verify"]));
    // No temp folder is left behind by the one that lost the race.
    let root = made(&a).parent().unwrap().to_path_buf();
    let leftovers: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let user = tempfile::tempdir().unwrap();
    let out = user.path().join("mine");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("thesis.tex"), "precious").unwrap();
    let o = out.display().to_string();
    let r = run(
        &c,
        &[
            "quantize",
            "--model",
            "whisper-tiny.en",
            "--recipe",
            "dynamic",
            "--out",
            &o,
            "--force",
        ],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.starts_with("error: ") && r.stderr.contains("is not a quantbench output"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(out.join("thesis.tex")).unwrap(),
        "precious"
    );

    // quantbench's own output is replaced whole.
    let ours = user.path().join("int8");
    let s = ours.display().to_string();
    quantize(&c, "whisper-tiny.en", "dynamic", &["--out", &s]);
    quantize(&c, "whisper-tiny.en", "weights", &["--out", &s, "--force"]);
    let sidecar = std::fs::read_to_string(ours.join("quantization.json")).unwrap();
    assert!(sidecar.contains("\"recipe\": \"weights\""), "{sidecar}");
    let hidden: Vec<_> = std::fs::read_dir(user.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "temp folders left: {hidden:?}");
}
