//! The ONNX reader and the quantizer's rewrite of one graph, with the dynamic, weight-only and static
//! recipes (static on empty statistics).
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use quantbench::quant::{quantize_folder, Calibration, Recipe};

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
}

fuzz_target!(|data: &[u8]| {
    let src = dir().path().join("src");
    let _ = std::fs::create_dir_all(&src);
    if std::fs::write(src.join("g.onnx"), data).is_err() {
        return;
    }
    let calibration = Calibration {
        stats: Default::default(),
        sha256: String::new(),
        clips: 0,
        smoothing: Default::default(),
        origin: None,
        seconds: 0.0,
    };
    for (recipe, cal) in [
        (Recipe::Dynamic, None),
        (Recipe::Weights, None),
        (Recipe::Static, Some(&calibration)),
    ] {
        let dst = dir().path().join(recipe.name());
        let _ = std::fs::remove_dir_all(&dst);
        let _ = std::fs::create_dir_all(&dst);
        let _ = quantize_folder(&src, &dst, &["g.onnx"], recipe, cal, &mut |_| {});
    }
});
