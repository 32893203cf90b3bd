//! The normalizer port against openai-whisper's EnglishTextNormalizer on every case in
//! tests/fixtures/normalizer_reference.json (made by tools/make_normalizer_fixtures.py).

#[test]
fn port_matches_whisper_english_text_normalizer() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/normalizer_reference.json"
    );
    let cases: Vec<(String, String)> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() > 50);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(input, want)| {
            let got = quantbench::measure::normalizer::normalize(input);
            (&got != want).then(|| format!("{input:?}\n  whisper: {want:?}\n  ours:    {got:?}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
