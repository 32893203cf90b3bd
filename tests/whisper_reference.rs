//! The FP32 pipeline against independent references (tests/fixtures/whisper_reference.json, produced by
//! tools/make_whisper_fixtures.py with faster-whisper 1.2.1's numpy feature extractor and CTranslate2's greedy
//! decoding of the same fp16 weights).

mod common;

use quantbench::data::audio::load_16k;
use quantbench::models::whisper::features::MelExtractor;

#[test]
fn log_mel_matches_faster_whisper_feature_extractor() {
    let r = common::reference();
    let mel = &r["mel"];
    let audio = load_16k(
        &common::repo()
            .join("datasets/speech-en")
            .join(mel["audio"].as_str().unwrap()),
    )
    .unwrap();
    let m = MelExtractor::new(80).compute(&audio.samples);
    let shape: Vec<usize> = mel["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!((m.n_mels, m.frames), (shape[0], shape[1]));
    let max = m.data.iter().cloned().fold(f32::MIN, f32::max);
    let mean = m.data.iter().map(|&v| v as f64).sum::<f64>() / m.data.len() as f64;
    assert!(
        (max as f64 - mel["max"].as_f64().unwrap()).abs() < 1e-4,
        "max {max}"
    );
    assert!(
        (mean - mel["mean"].as_f64().unwrap()).abs() < 1e-4,
        "mean {mean}"
    );
    for s in mel["samples"].as_array().unwrap() {
        let (mi, fi, want) = (
            s[0].as_u64().unwrap() as usize,
            s[1].as_u64().unwrap() as usize,
            s[2].as_f64().unwrap(),
        );
        let got = m.data[mi * m.frames + fi] as f64;
        assert!(
            (got - want).abs() < 1e-4,
            "mel[{mi},{fi}] = {got}, reference {want}"
        );
    }
}

fn check_tokens(model: &'static str) {
    let refs = common::reference_tokens(model);
    assert!(refs.len() >= 10, "fixture covers the bundled 16 kHz clips");
    let mut p = common::pipeline(model).lock().unwrap();
    let mismatches: Vec<String> = refs
        .iter()
        .filter_map(|(audio, ids, text)| {
            let t = common::transcribe_clip(&mut p, audio);
            (&t.tokens != ids).then(|| format!("{audio}:\n  ours: {}\n  ct2:  {text}", t.text))
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{model}: token mismatches:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn tiny_en_greedy_tokens_equal_ctranslate2() {
    check_tokens("whisper-tiny.en");
}

#[test]
fn base_greedy_tokens_equal_ctranslate2() {
    check_tokens("whisper-base");
}

#[test]
fn audio_longer_than_30_s_is_transcribed_window_by_window() {
    let dir = common::repo().join("datasets/speech-en/librivox");
    let mut samples = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    names.sort();
    for n in &names {
        samples.extend(load_16k(n).unwrap().samples);
        samples.extend(std::iter::repeat_n(0.0f32, 32_000)); // two seconds of silence between sentences
    }
    assert!(
        samples.len() > 30 * 16_000,
        "test clip must exceed one window"
    );
    let mut p = common::pipeline("whisper-tiny.en").lock().unwrap();
    let t = p.transcribe(&samples).unwrap();
    assert_eq!(t.windows, 2);
    let text = quantbench::measure::normalizer::normalize(&t.text);
    // First and last sentences: "and mister john dashwood ..." / "he might even have been made amiable himself"
    assert!(text.contains("dashwood"), "{text}");
    assert!(text.contains("amiable himself"), "{text}");
}
