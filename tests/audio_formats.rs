//! Compressed audio and the audio track of videos, each file made by a real encoder
//! (`tools/make_audio_fixtures.sh`: lame, ffmpeg) and checked against ffmpeg's own decoding of it
//! (`FILE.ref.flac`, written by the same script).

mod common;

use std::path::PathBuf;

use common::{pipeline, repo};
use quantbench::data::audio::{decode_16k, load, load_16k, AudioLimits};

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/audio").join(name)
}

/// Every format the fixtures hold that quantbench decodes.
const DECODABLE: [&str; 7] = [
    "clip.mp3",
    "clip.m4a",
    "clip.aac",
    "clip.ogg",
    "clip-video.mp4",
    "clip-video.mov",
    "clip-video.mkv",
];

/// The lag (samples `ours` is late by) and the signal-to-error ratio in dB at that lag, the lag searched
/// within ±`max_lag` on the first second.
fn align(ours: &[f32], reference: &[f32], rate: usize, max_lag: i64) -> (i64, f64) {
    let at = |x: &[f32], i: i64| -> f64 {
        usize::try_from(i)
            .ok()
            .and_then(|i| x.get(i))
            .map_or(0.0, |&v| f64::from(v))
    };
    let window = rate.min(reference.len()) as i64;
    let lag = (-max_lag..=max_lag)
        .max_by(|&a, &b| {
            let corr = |lag: i64| -> f64 {
                (0..window)
                    .map(|i| at(ours, i + lag) * at(reference, i))
                    .sum()
            };
            corr(a).total_cmp(&corr(b))
        })
        .unwrap();
    let (mut signal, mut error) = (0.0, 0.0);
    for i in 0..reference.len() as i64 {
        if i + lag < 0 || i + lag >= ours.len() as i64 {
            continue;
        }
        let r = at(reference, i);
        signal += r * r;
        error += (at(ours, i + lag) - r).powi(2);
    }
    (lag, 10.0 * (signal / error.max(1e-30)).log10())
}

#[test]
fn every_container_and_codec_decodes_as_ffmpeg_decodes_it() {
    for name in DECODABLE {
        let ours = load(&fixture(name)).unwrap_or_else(|e| panic!("{e}"));
        let reference = load(&fixture(&format!("{name}.ref.flac"))).unwrap();
        assert_eq!(ours.rate, reference.rate, "{name}");
        let (lag, snr) = align(&ours.samples, &reference.samples, ours.rate as usize, 3_000);
        let lengths = (ours.samples.len(), reference.samples.len());
        println!("{name}: lag {lag}, {snr:.1} dB, lengths {lengths:?}");
        assert!(
            snr >= 40.0,
            "{name}: {snr:.1} dB against ffmpeg at lag {lag}"
        );
        assert!(
            lag.abs() <= 2_112 && ours.samples.len().abs_diff(reference.samples.len()) <= 2_112,
            "{name}: lag {lag}, lengths {lengths:?} (ours, ffmpeg's)"
        );
    }
}

#[test]
fn the_audio_of_each_format_transcribes_as_ffmpegs_decoding_of_it_does() {
    let mut p = pipeline("whisper-tiny.en").lock().unwrap();
    for name in DECODABLE {
        let ours = load_16k(&fixture(name)).unwrap();
        let reference = load_16k(&fixture(&format!("{name}.ref.flac"))).unwrap();
        let text = p.transcribe(&ours.samples).unwrap().text;
        let expected = p.transcribe(&reference.samples).unwrap().text;
        assert_eq!(text, expected, "{name}");
        assert!(text.contains("young man"), "{name}: {text}");
    }
}

fn error_of(name: &str, bytes: Vec<u8>) -> Option<String> {
    let len = bytes.len() as u64;
    decode_16k(
        &PathBuf::from(name),
        std::io::Cursor::new(bytes),
        len,
        &AudioLimits::default(),
    )
    .err()
    .map(|e| e.to_string())
}

#[test]
fn unsupported_codecs_and_files_without_audio_are_named() {
    for (name, expected) in [
        ("clip.opus", "unsupported audio codec Opus"),
        ("clip-ac3.mkv", "unsupported audio codec"),
        ("video-only.mp4", "no audio track"),
    ] {
        let e = load(&fixture(name)).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(expected), "{e}");
    }
}

#[test]
fn broken_files_of_every_format_give_an_error_naming_them_and_never_a_panic() {
    for name in DECODABLE {
        let good = std::fs::read(fixture(name)).unwrap();
        let whole = load(&fixture(name)).unwrap().duration_s();

        // Cut inside the header and first frames: nothing can be decoded, whatever the format.
        let e = error_of(name, good[..good.len().min(120)].to_vec());
        assert!(
            e.as_ref().is_some_and(|e| e.contains(name)),
            "{name}: {e:?}"
        );

        // Cut at 60 %: an error where the file's index is lost or declares more than is there (MP4,
        // MOV: ffmpeg writes the index last); otherwise at most what is there, never padding or garbage
        // (lame's CBR MP3 declares no frame count: symphonia estimates it from the length).
        let cut = good[..good.len() * 6 / 10].to_vec();
        let len = cut.len() as u64;
        match decode_16k(
            &PathBuf::from(name),
            std::io::Cursor::new(cut),
            len,
            &AudioLimits::default(),
        ) {
            Err(e) => assert!(e.to_string().contains(name), "{e}"),
            Ok(a) => {
                assert!(
                    !matches!(name, "clip.m4a" | "clip-video.mp4" | "clip-video.mov"),
                    "{name}: a truncated file that declares its length was accepted"
                );
                assert!(a.duration_s() < whole, "{name}: {} s", a.duration_s());
            }
        }

        // Bytes overwritten in the middle: decoded or refused, but never a panic.
        for seed in 0..8u32 {
            let mut bad = good.clone();
            let at = bad.len() / 3 + (seed as usize * 997) % (bad.len() / 3);
            for (k, b) in bad[at..(at + 64).min(good.len())].iter_mut().enumerate() {
                *b = (seed
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(k as u32 * 40_503)
                    >> 24) as u8;
            }
            if let Some(e) = error_of(name, bad) {
                assert!(e.contains(name), "{e}");
            }
        }
    }
}
