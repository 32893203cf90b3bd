//! JSONL manifests of every kind (the files they name need not exist).
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use quantbench::data::manifest;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("temp dir");
        std::fs::write(d.path().join("a.wav"), b"x").expect("write");
        std::fs::write(d.path().join("a.png"), b"x").expect("write");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let path = dir().path().join("m.jsonl");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = manifest::kind_of(&path);
    let _ = manifest::load_speech(&path);
    let _ = manifest::load_vqa(&path);
    let _ = manifest::load_captions(&path);
});
