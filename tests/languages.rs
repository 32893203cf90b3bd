//! Language identification and translation with a multilingual Whisper, on speech in German, Spanish and
//! Italian synthesised by espeak-ng, against faster-whisper 1.2.1 on the same CTranslate2 weights
//! (`tools/make_language_fixtures.sh` writes both).

mod common;

use common::{pipeline, quantbench, repo};
use quantbench::data::audio::load_16k;
use quantbench::models::whisper::Task;

const LANGUAGES: [&str; 3] = ["de", "es", "it"];

fn reference() -> serde_json::Value {
    let text =
        std::fs::read_to_string(repo().join("tests/fixtures/languages/reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn clip(lang: &str) -> std::path::PathBuf {
    repo().join(format!("tests/fixtures/languages/{lang}.flac"))
}

#[test]
fn detected_languages_and_their_probabilities_match_faster_whisper() {
    let reference = reference();
    let mut p = pipeline("whisper-base").lock().unwrap();
    for lang in LANGUAGES {
        let audio = load_16k(&clip(lang)).unwrap();
        let probs = p.detect_language(&audio.samples).unwrap();
        assert_eq!(probs.len(), 99, "whisper-base knows 99 languages");
        let sum: f32 = probs.iter().map(|l| l.probability).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
        let top3 = reference["clips"][lang]["top3"].as_array().unwrap();
        assert_eq!(probs[0].code, lang);
        for (ours, theirs) in probs.iter().zip(top3) {
            assert_eq!(ours.code, theirs[0].as_str().unwrap(), "{lang}: {probs:?}");
            let p_ref = theirs[1].as_f64().unwrap() as f32;
            assert!(
                (ours.probability - p_ref).abs() <= 0.02,
                "{lang}: {} {} against faster-whisper's {p_ref}",
                ours.code,
                ours.probability
            );
        }
    }
}

#[test]
fn transcripts_and_a_translation_match_faster_whisper() {
    let reference = reference();
    let mut p = pipeline("whisper-base").lock().unwrap();
    for lang in LANGUAGES {
        let audio = load_16k(&clip(lang)).unwrap();
        p.set_language(lang, Task::Transcribe).unwrap();
        let text = p.transcribe(&audio.samples).unwrap().text;
        assert_eq!(text, reference["clips"][lang]["transcript"], "{lang}");
    }
    let audio = load_16k(&clip("es")).unwrap();
    p.set_language("es", Task::Translate).unwrap();
    let text = p.transcribe(&audio.samples).unwrap().text;
    p.set_language("en", Task::Transcribe).unwrap();
    assert_eq!(text, reference["clips"]["es"]["translation"]);
}

#[test]
fn transcribe_detects_the_language_and_prints_the_top_three() {
    let es = clip("es").display().to_string();
    let out = quantbench(&["transcribe", "--model", "whisper-base", &es]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{es}: language es 0.9")),
        "{stderr}"
    );
    assert!(stdout.contains("Buenos días a todos."), "{stdout}");
}

#[test]
fn an_english_only_model_refuses_translation_and_other_languages() {
    let de = clip("de").display().to_string();
    for (args, expected) in [
        (
            vec!["--task", "translate"],
            "English-only model: it cannot translate",
        ),
        (vec!["--language", "de"], "cannot transcribe language `de`"),
    ] {
        let mut all = vec!["transcribe", "--model", "whisper-tiny.en"];
        all.extend(args);
        all.push(&de);
        let out = quantbench(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
        assert!(
            line.contains("whisper-tiny.en") && line.contains(expected),
            "{line}"
        );
    }
    let out = quantbench(&[
        "transcribe",
        "--model",
        "whisper-base",
        "--language",
        "xx",
        &de,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`xx` is not a language this model knows"),
        "{stderr}"
    );
}

/// An experiment over the Spanish clip with `extra` in its entry; (exit code, stderr, the JSON report).
fn experiment(model: &str, extra: &str) -> (Option<i32>, String, Option<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("es.jsonl");
    let line = serde_json::json!({"audio": clip("es").display().to_string(), "text": "Buenos días a todos."});
    std::fs::write(&manifest, format!("{line}\n")).unwrap();
    let config = dir.path().join("exp.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"lang\"\n[measure]\nwarmup = 0\nruns = 1\ne2e_passes = 1\n[[models]]\nmodel = \"{model}\"\ndataset = {:?}\n{extra}\n",
            manifest.display().to_string()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = quantbench(&[
        "report",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let json = std::fs::read_dir(&out).ok().and_then(|d| {
        d.flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "json"))
    });
    (
        run.status.code(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
        json.map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()),
    )
}

#[test]
fn experiment_entries_take_a_language_and_a_task() {
    let (code, stderr, report) =
        experiment("whisper-base", "language = \"es\"\ntask = \"translate\"");
    assert_eq!(code, Some(0), "{stderr}");
    let report = report.unwrap();
    let item = &report["rows"][0]["evaluation"]["items"][0];
    assert_eq!(
        item["hypothesis"],
        reference()["clips"]["es"]["translation"]
    );
    let (code, stderr, _) = experiment("whisper-base", "language = \"es\"");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr, _) = experiment("whisper-tiny.en", "task = \"translate\"");
    assert_eq!(code, Some(1), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        line.contains("whisper-tiny.en") && line.contains("cannot translate"),
        "{line}"
    );
}
