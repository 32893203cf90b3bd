//! CTranslate2 model.bin: the reader, then the exporter's three graphs when it reads.
#![no_main]
use libfuzzer_sys::fuzz_target;
use quantbench::models::whisper::{ct2::Ct2Model, export};

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Ct2Model::parse(std::path::Path::new("model.bin"), data) else {
        return;
    };
    if let Ok(dims) = export::dims(&model) {
        let _ = export::graphs(&model, &dims);
    }
});
