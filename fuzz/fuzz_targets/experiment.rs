//! The experiment TOML.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(exp) = quantbench::config::Experiment::parse(std::path::Path::new("fuzz.toml"), text) {
        let _ = exp.measure.check();
        let _ = exp.threads();
    }
});
