//! Long-form decoding on the composed recordings of `datasets/speech-long` against faster-whisper 1.2.1
//! on the same CTranslate2 weights (`tools/make_longform_reference.sh` writes
//! `tests/fixtures/longform/reference.json`), the segment starts against the known joins, and the
//! subtitle files as a strict parser and ffmpeg read them.

mod common;

use std::path::Path;
use std::process::Command;

use common::{pipeline, quantbench, repo};
use quantbench::data::audio::AudioLimits;
use quantbench::data::recordings::{self, Recording};
use quantbench::measure::segments::joins_met;
use quantbench::models::whisper::{LongFormOptions, Segment, Task};

fn recordings() -> Vec<Recording> {
    let spec = recordings::load_spec(&repo().join("datasets/speech-long/recordings.toml")).unwrap();
    spec.iter()
        .map(|s| recordings::compose(s, &AudioLimits::default()).unwrap())
        .collect()
}

fn reference() -> serde_json::Value {
    let text =
        std::fs::read_to_string(repo().join("tests/fixtures/longform/reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn transcribe(model: &'static str, recording: &Recording) -> Vec<Segment> {
    let mut p = pipeline(model).lock().unwrap();
    if model == "whisper-base" {
        p.set_language("en", Task::Transcribe).unwrap();
    }
    p.transcribe_long(&recording.samples, &LongFormOptions::default(), &mut |_| {})
        .unwrap()
        .segments
}

/// The share of joins at which a segment starts near the join (the library's rule).
fn join_agreement(recording: &Recording, starts: &[f64]) -> f64 {
    let (met, joins) = joins_met(&recording.joins(), starts);
    met as f64 / joins as f64
}

fn check_against_faster_whisper(model: &'static str) {
    let reference = reference();
    for recording in recordings() {
        let ours = transcribe(model, &recording);
        let theirs = reference["models"][model][&recording.name]["segments"]
            .as_array()
            .unwrap();
        let at = |i: usize| format!("{model} {} segment {i}", recording.name);
        assert_eq!(ours.len(), theirs.len(), "{model} {}", recording.name);
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            assert_eq!(a.text, b["text"].as_str().unwrap(), "{}", at(i));
            let tokens: Vec<i64> = b["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_i64().unwrap())
                .collect();
            assert_eq!(a.tokens, tokens, "{}", at(i));
            assert_eq!(a.seek as i64, b["seek"].as_i64().unwrap(), "{}", at(i));
            let close = |ours: f64, key: &str, tolerance: f64| {
                let theirs = b[key].as_f64().unwrap();
                assert!(
                    (ours - theirs).abs() <= tolerance,
                    "{}: {key} {ours} against faster-whisper's {theirs}",
                    at(i)
                );
            };
            close(a.start, "start", 0.006);
            close(a.end, "end", 0.006);
            close(f64::from(a.temperature), "temperature", 1e-6);
            close(a.compression_ratio, "compression_ratio", 1e-3);
            close(a.avg_logprob, "avg_logprob", 0.02);
            close(a.no_speech_prob, "no_speech_prob", 0.02);
        }
    }
}

#[test]
fn tiny_en_segments_match_faster_whisper() {
    check_against_faster_whisper("whisper-tiny.en");
}

#[test]
fn base_segments_match_faster_whisper() {
    check_against_faster_whisper("whisper-base");
}

#[test]
fn segments_start_at_the_joins_between_clips() {
    let reference = reference();
    for model in ["whisper-tiny.en", "whisper-base"] {
        for recording in recordings() {
            let ours: Vec<f64> = transcribe(model, &recording)
                .iter()
                .map(|s| s.start)
                .collect();
            let theirs: Vec<f64> = reference["models"][model][&recording.name]["segments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["start"].as_f64().unwrap())
                .collect();
            let (a, b) = (
                join_agreement(&recording, &ours),
                join_agreement(&recording, &theirs),
            );
            eprintln!(
                "{model} {}: {:.0} % of joins (faster-whisper {:.0} %)",
                recording.name,
                a * 100.0,
                b * 100.0
            );
            assert!(a >= 0.8, "{model} {}: {a}", recording.name);
        }
    }
}

/// One cue of a subtitle file: start and end in milliseconds, text.
type Cue = (u64, u64, String);

/// `HH:MM:SS<sep>mmm` with two-digit minutes and seconds below 60.
fn timestamp(text: &str, separator: char) -> Result<u64, String> {
    let bad = || format!("bad timestamp {text:?}");
    let (hms, ms) = text.split_once(separator).ok_or_else(bad)?;
    let parts: Vec<&str> = hms.split(':').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if parts.len() != 3
        || !digits(parts[0], 2)
        || !digits(parts[1], 2)
        || !digits(parts[2], 2)
        || !digits(ms, 3)
    {
        return Err(bad());
    }
    let n = |s: &str| s.parse::<u64>().unwrap();
    if n(parts[1]) >= 60 || n(parts[2]) >= 60 {
        return Err(bad());
    }
    Ok(((n(parts[0]) * 60 + n(parts[1])) * 60 + n(parts[2])) * 1000 + n(ms))
}

/// SubRip as written by the book: cues numbered from 1 in order, `start --> end` with comma
/// milliseconds, one or more text lines, a blank line after each cue; starts never go back, each end
/// after its start.
fn parse_srt(text: &str) -> Result<Vec<Cue>, String> {
    parse_cues(text, ',', true)
}

/// WebVTT: the `WEBVTT` header line and a blank line, then cues as in SubRip without numbers and with
/// dot milliseconds.
fn parse_vtt(text: &str) -> Result<Vec<Cue>, String> {
    let body = text
        .strip_prefix("WEBVTT\n\n")
        .ok_or("no WEBVTT header followed by a blank line")?;
    parse_cues(body, '.', false)
}

fn parse_cues(body: &str, separator: char, numbered: bool) -> Result<Vec<Cue>, String> {
    if !body.ends_with("\n\n") {
        return Err("the last cue is not followed by a blank line".into());
    }
    let mut cues: Vec<Cue> = Vec::new();
    for block in body.trim_end_matches('\n').split("\n\n") {
        let mut lines = block.lines();
        if numbered {
            let number = lines.next().ok_or("empty cue")?;
            if number != (cues.len() + 1).to_string() {
                return Err(format!("cue {number:?} where {} was due", cues.len() + 1));
            }
        }
        let timing = lines.next().ok_or("cue without timing")?;
        let (start, end) = timing
            .split_once(" --> ")
            .ok_or_else(|| format!("bad timing line {timing:?}"))?;
        let (start, end) = (timestamp(start, separator)?, timestamp(end, separator)?);
        let text: Vec<&str> = lines.collect();
        if text.is_empty()
            || text
                .iter()
                .any(|l| l.trim().is_empty() || l.contains("-->"))
        {
            return Err(format!("cue at {start} ms has no text or a bad line"));
        }
        if end <= start || cues.last().is_some_and(|c| start < c.0) {
            return Err(format!("cue at {start} ms is out of order"));
        }
        cues.push((start, end, text.join("\n")));
    }
    Ok(cues)
}

#[test]
fn the_strict_parser_refuses_malformed_subtitles() {
    assert_eq!(
        parse_srt("1\n00:00:01,000 --> 00:00:02,500\nhello\n\n").unwrap(),
        vec![(1000, 2500, "hello".into())]
    );
    for bad in [
        "1\n00:00:01,000 -> 00:00:02,500\nhello\n\n",
        "2\n00:00:01,000 --> 00:00:02,500\nhello\n\n",
        "1\n00:00:01.000 --> 00:00:02,500\nhello\n\n",
        "1\n00:00:61,000 --> 00:01:02,500\nhello\n\n",
        "1\n00:00:03,000 --> 00:00:02,500\nhello\n\n",
        "1\n00:00:01,000 --> 00:00:02,500\n\n",
        "1\n00:00:01,000 --> 00:00:02,500\nhello\n",
    ] {
        assert!(parse_srt(bad).is_err(), "{bad:?}");
    }
    assert!(parse_vtt("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nhi\n\n").is_ok());
    assert!(parse_vtt("00:00:01.000 --> 00:00:02.500\nhi\n\n").is_err());
}

/// The cues ffmpeg reads from `path`, written back out as SubRip.
fn ffmpeg_cues(path: &Path) -> Result<Vec<Cue>, String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "srt", "-"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    parse_srt(&String::from_utf8_lossy(&out.stdout))
}

fn ffprobe_codec(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ffmpeg_present() -> bool {
    let present = Command::new("ffmpeg").arg("-version").output().is_ok();
    if !present {
        // CI installs ffmpeg (.ci/run) and sets this, so the check cannot be skipped there.
        assert!(
            std::env::var_os("QUANTBENCH_REQUIRE_FFMPEG").is_none(),
            "ffmpeg is required (apt-get install ffmpeg)"
        );
        eprintln!("ffmpeg not found: the subtitle files are checked by the strict parser only");
    }
    present
}

#[test]
fn subtitles_are_read_by_a_strict_parser_and_by_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let recording = &recordings()[0];
    let wav = dir.path().join("read-15.wav");
    recordings::write_wav(recording, &wav).unwrap();
    let out_dir = dir.path().join("out");
    let (wav, out_dir_text) = (wav.display().to_string(), out_dir.display().to_string());
    for format in ["srt", "vtt", "json"] {
        let out = quantbench(&[
            "transcribe",
            "--model",
            "whisper-tiny.en",
            "--format",
            format,
            "--output-dir",
            &out_dir_text,
            &wav,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("read-15.json")).unwrap())
            .unwrap();
    let ms = |v: &serde_json::Value| (v.as_f64().unwrap() * 1000.0).round() as u64;
    let expected: Vec<Cue> = json["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["text"].as_str().unwrap().trim().is_empty())
        .map(|s| {
            (
                ms(&s["start"]),
                ms(&s["end"]),
                s["text"].as_str().unwrap().trim().to_string(),
            )
        })
        .collect();
    assert!(expected.len() >= 15, "{}", expected.len());
    let srt = out_dir.join("read-15.srt");
    let vtt = out_dir.join("read-15.vtt");
    assert_eq!(
        parse_srt(&std::fs::read_to_string(&srt).unwrap()).unwrap(),
        expected
    );
    assert_eq!(
        parse_vtt(&std::fs::read_to_string(&vtt).unwrap()).unwrap(),
        expected
    );
    if ffmpeg_present() {
        assert_eq!(ffprobe_codec(&srt), "subrip,subtitle");
        assert_eq!(ffprobe_codec(&vtt), "webvtt,subtitle");
        assert_eq!(ffmpeg_cues(&srt).unwrap(), expected);
        assert_eq!(ffmpeg_cues(&vtt).unwrap(), expected);
        let broken = dir.path().join("broken.srt");
        std::fs::write(&broken, "1\n00:00:01,000 -> 00:00:02\nhello\n").unwrap();
        assert!(ffmpeg_cues(&broken).is_err(), "ffmpeg reads a broken file");
    }
}

#[test]
fn transcribe_refuses_two_inputs_that_would_write_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
        std::fs::copy(
            repo()
                .join("datasets/speech-en/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"),
            d.join("clip.wav"),
        )
        .unwrap();
    }
    let out_dir = dir.path().join("out").display().to_string();
    let (a, b) = (
        a.join("clip.wav").display().to_string(),
        b.join("clip.wav").display().to_string(),
    );
    let out = quantbench(&[
        "transcribe",
        "--model",
        "whisper-tiny.en",
        "--format",
        "srt",
        "--output-dir",
        &out_dir,
        &a,
        &b,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.starts_with("error: ") && stderr.contains("clip.srt"),
        "{stderr}"
    );
    assert!(!dir.path().join("out/clip.srt").exists(), "nothing written");
}

#[test]
fn transcribe_refuses_bad_long_form_options() {
    let clip = "datasets/speech-en/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";
    for args in [
        ["--compression-ratio-threshold", "high"],
        ["--temperatures", "0,x"],
        ["--temperatures", "-1"],
        ["--best-of", "0"],
        ["--output-dir", "/tmp"],
    ] {
        let mut all = vec!["transcribe", "--model", "whisper-tiny.en"];
        all.extend(args);
        all.push(clip);
        let out = quantbench(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_short_clip_in_txt_reads_as_the_plain_output_does() {
    let dir = tempfile::tempdir().unwrap();
    let clip = "datasets/speech-en/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";
    let plain = quantbench(&["transcribe", "--model", "whisper-tiny.en", clip]);
    let stdout = String::from_utf8_lossy(&plain.stdout);
    let (_, text) = stdout.trim_end().split_once('\t').unwrap();
    let out_dir = dir.path().display().to_string();
    let out = quantbench(&[
        "transcribe",
        "--model",
        "whisper-tiny.en",
        "--format",
        "txt",
        "--output-dir",
        &out_dir,
        clip,
    ]);
    assert!(out.status.success());
    let written = std::fs::read_to_string(
        dir.path()
            .join("sense_and_sensibility_01_austen_64kb-0870.txt"),
    )
    .unwrap();
    assert_eq!(written.trim_end(), text);
}

/// A 6-clip recording (two windows) in a spec under `dir`, naming the bundled clips by absolute path.
fn short_spec(dir: &Path) -> std::path::PathBuf {
    let speech = repo().join("datasets/speech-en");
    let clips: Vec<String> = [
        "ljspeech/LJ001-0009.wav",
        "ljspeech/LJ001-0011.wav",
        "librispeech/2412-153948-0000.flac",
        "ljspeech/LJ001-0013.wav",
        "ljspeech/LJ001-0015.wav",
        "librispeech/1995-1837-0001.wav",
    ]
    .iter()
    .map(|c| format!("{:?}", speech.join(c).display().to_string()))
    .collect();
    let spec = dir.join("recordings.toml");
    std::fs::write(
        &spec,
        format!(
            "manifests = [{:?}]\n[[recording]]\nname = \"six\"\nlead_s = 0.5\ntail_s = 1.0\ngaps_s = [0.8, 1.2]\nclips = [{}]\n",
            speech.join("manifest.jsonl").display().to_string(),
            clips.join(", ")
        ),
    )
    .unwrap();
    spec
}

#[test]
fn a_long_form_entry_reports_wer_real_time_factor_and_segment_times_against_fp32() {
    let dir = tempfile::tempdir().unwrap();
    let spec = short_spec(dir.path());
    let config = dir.path().join("exp.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"long\"\n[measure]\nwarmup = 0\nruns = 2\ne2e_passes = 1\n[[models]]\nmodel = \"whisper-tiny.en\"\ndataset = {:?}\nlimit = 1\nvariants = [\"dynamic\"]\nlong_form = {:?}\nlong_form_passes = 2\n",
            repo().join("datasets/speech-en/manifest.jsonl").display().to_string(),
            spec.display().to_string()
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
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let json = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let report =
        quantbench::results::ExperimentResult::from_json(&std::fs::read_to_string(json).unwrap())
            .unwrap();
    let recording = recordings::compose(
        &recordings::load_spec(&spec).unwrap()[0],
        &AudioLimits::default(),
    )
    .unwrap();
    let expected = transcribe("whisper-tiny.en", &recording);
    let (fp32, dynamic) = (&report.rows[0], &report.rows[1]);
    for row in [fp32, dynamic] {
        let series = &row.series["long_form"];
        assert_eq!(series.stats.n, 2, "one recording, two passes");
        let l = row.long_form.as_ref().expect("a long-form outcome");
        let r = &l.recordings[0];
        assert_eq!(r.runs, 2);
        assert!((r.audio_seconds - recording.duration_s()).abs() < 1e-9);
        assert!((l.real_time_factor - l.audio_seconds / l.compute_seconds).abs() < 1e-9);
        assert!(r.compute_seconds >= series.stats.min_ms / 1e3 - 1e-9);
        assert!(
            r.compute_seconds
                <= series.stats.runs_ms.iter().cloned().fold(0.0, f64::max) / 1e3 + 1e-9
        );
        let joined: Vec<&str> = r.segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            r.hypothesis.split_whitespace().collect::<Vec<_>>(),
            joined.join(" ").split_whitespace().collect::<Vec<_>>()
        );
        assert_eq!(r.joins, 5);
        assert_eq!(l.word_counts.reference_len, r.reference_words);
        assert!(r.windows >= 2, "{r:?}");
    }
    // FP32's segments are the library's (which match faster-whisper's).
    let l = fp32.long_form.as_ref().unwrap();
    assert!(l.vs_fp32.is_none());
    let got: Vec<(f64, f64, &str)> = l.recordings[0]
        .segments
        .iter()
        .map(|s| (s.start, s.end, s.text.as_str()))
        .collect();
    let want: Vec<(f64, f64, &str)> = expected
        .iter()
        .map(|s| (s.start, s.end, s.text.trim()))
        .collect();
    assert_eq!(got, want);
    let v = dynamic
        .long_form
        .as_ref()
        .unwrap()
        .vs_fp32
        .as_ref()
        .unwrap();
    assert_eq!(v.timing.baseline_segments, want.len());
    assert!(v.timing.aligned > 0 && v.timing.aligned <= want.len().min(v.timing.segments));
    assert!(v.timing.mean_abs_start_s.unwrap() >= 0.0);
    let drop = (dynamic.long_form.as_ref().unwrap().wer - l.wer) * 100.0;
    assert!((v.wer_drop_points - drop).abs() < 1e-9);
    assert!(dynamic.speedup("long_form").is_some());
    let md = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "md"))
        .unwrap();
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("### Long-form: 1 recordings"), "{md}");
    assert!(md.contains("| dynamic |"), "{md}");
}
