//! PNG/JPEG header checks and decoding to RGB.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = quantbench::data::image::decode_rgb(data);
});
