//! blip.json and Whisper's config.json (first byte picks which).
#![no_main]
use libfuzzer_sys::fuzz_target;
use quantbench::models::{blip::BlipConfig, whisper::model::WhisperConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if which % 2 == 0 {
        if let Ok(c) = BlipConfig::parse(text) {
            let _ = c.image();
        }
    } else {
        let _ = WhisperConfig::parse(text, &serde_json::Value::Null);
    }
});
