/// The sources that shape what goes into a cache entry: a change to any of them gives new entries.
const ENTRY_SOURCES: [&str; 6] = [
    "src/quant",
    "src/onnx",
    "src/engine/calibrate.rs",
    "src/models/whisper/export.rs",
    "src/models/blip/export.rs",
    "proto/onnx.proto",
];

fn code_sha256() -> String {
    use sha2::{Digest, Sha256};
    fn files(p: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)
                .map(|r| r.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            entries.sort();
            for e in entries {
                files(&e, out);
            }
        } else if p.is_file() {
            out.push(p.to_path_buf());
        }
    }
    let mut all = Vec::new();
    for s in ENTRY_SOURCES {
        println!("cargo:rerun-if-changed={s}");
        files(std::path::Path::new(s), &mut all);
    }
    let mut h = Sha256::new();
    for f in all {
        h.update(f.to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap_or_default());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

// Compiles the official onnx.proto with a pure-Rust protobuf compiler (protox), so no protoc binary is needed.
fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    if let Ok(out) = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
    {
        if out.status.success() {
            let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
            println!("cargo:rustc-env=QUANTBENCH_GIT_COMMIT={commit}");
        }
    }
    // Dirty: tracked files differ from HEAD. Re-checked whenever the sources or the index change.
    for watched in [".git/index", "src", "Cargo.toml", "Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={watched}");
    }
    if let Ok(out) = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
    {
        if out.status.success() {
            let dirty = !out.stdout.is_empty();
            println!("cargo:rustc-env=QUANTBENCH_GIT_DIRTY={dirty}");
        }
    }
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    println!("cargo:rustc-env=QUANTBENCH_CODE_SHA256={}", code_sha256());
    let fds =
        protox::compile(["proto/onnx.proto"], ["proto"]).expect("proto/onnx.proto must compile");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost code generation for onnx.proto");
}
