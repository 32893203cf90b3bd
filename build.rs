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
    let fds =
        protox::compile(["proto/onnx.proto"], ["proto"]).expect("proto/onnx.proto must compile");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost code generation for onnx.proto");
}
