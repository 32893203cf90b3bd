//! WAV and FLAC loading, resampling included, within a one-minute limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quantbench::data::audio::{decode_16k, AudioLimits};

fuzz_target!(|data: &[u8]| {
    let limits = AudioLimits { max_seconds: 60.0 };
    let len = data.len() as u64;
    let _ = decode_16k(
        std::path::Path::new("clip.wav"),
        std::io::Cursor::new(data.to_vec()),
        len,
        &limits,
    );
});
