//! A long transcription → txt, SRT, WebVTT, TSV or JSON, laid out as openai-whisper's writers lay them out.

use serde::Serialize;

use crate::models::whisper::{LanguageProbability, Segment};

/// `transcribe --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TranscriptFormat {
    Txt,
    Srt,
    Vtt,
    Json,
    Tsv,
}

impl TranscriptFormat {
    pub fn extension(self) -> &'static str {
        match self {
            TranscriptFormat::Txt => "txt",
            TranscriptFormat::Srt => "srt",
            TranscriptFormat::Vtt => "vtt",
            TranscriptFormat::Json => "json",
            TranscriptFormat::Tsv => "tsv",
        }
    }
}

/// What a transcript file says of one input.
pub struct Transcript<'a> {
    pub language: &'a str,
    /// Best first; empty for an English-only model or a language given on the command line.
    pub language_probabilities: &'a [LanguageProbability],
    pub segments: &'a [Segment],
}

/// The file's text in `format`.
pub fn render(format: TranscriptFormat, t: &Transcript) -> String {
    match format {
        TranscriptFormat::Txt => t
            .segments
            .iter()
            .filter_map(|s| cue_text(&s.text))
            .map(|text| format!("{text}\n"))
            .collect(),
        TranscriptFormat::Srt => cues(t.segments)
            .enumerate()
            .map(|(i, (start, end, text))| {
                format!(
                    "{}\n{} --> {}\n{text}\n\n",
                    i + 1,
                    clock(start, ','),
                    clock(end, ',')
                )
            })
            .collect(),
        TranscriptFormat::Vtt => {
            let body: String = cues(t.segments)
                .map(|(start, end, text)| {
                    format!("{} --> {}\n{text}\n\n", clock(start, '.'), clock(end, '.'))
                })
                .collect();
            format!("WEBVTT\n\n{body}")
        }
        TranscriptFormat::Tsv => {
            let rows: String = cues(t.segments)
                .map(|(start, end, text)| {
                    format!(
                        "{}\t{}\t{}\n",
                        millis(start),
                        millis(end),
                        text.replace('\t', " ")
                    )
                })
                .collect();
            format!("start\tend\ttext\n{rows}")
        }
        TranscriptFormat::Json => json(t),
    }
}

/// A segment's text as a cue shows it: trimmed, on one line (`-->` would end a cue early), or none when
/// nothing is left.
fn cue_text(text: &str) -> Option<String> {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let safe = one_line.replace("-->", "->");
    (!safe.is_empty()).then_some(safe)
}

/// Start, end and text of every segment with text, each ending no earlier than it starts.
fn cues(segments: &[Segment]) -> impl Iterator<Item = (f64, f64, String)> + '_ {
    segments.iter().filter_map(|s| {
        let text = cue_text(&s.text)?;
        let start = s.start.max(0.0);
        Some((start, s.end.max(start), text))
    })
}

fn millis(seconds: f64) -> u64 {
    (seconds * 1000.0).round() as u64
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
fn clock(seconds: f64, decimal: char) -> String {
    let ms = millis(seconds);
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}{decimal}{ms:03}")
}

#[derive(Serialize)]
struct JsonTranscript<'a> {
    text: String,
    language: &'a str,
    language_probabilities: Vec<JsonLanguage<'a>>,
    segments: Vec<JsonSegment<'a>>,
}

#[derive(Serialize)]
struct JsonLanguage<'a> {
    language: &'a str,
    probability: f64,
}

#[derive(Serialize)]
struct JsonSegment<'a> {
    id: usize,
    seek: usize,
    start: f64,
    end: f64,
    text: &'a str,
    tokens: &'a [i64],
    temperature: f32,
    avg_logprob: f64,
    compression_ratio: f64,
    no_speech_prob: f64,
}

fn json(t: &Transcript) -> String {
    let text: String = t.segments.iter().map(|s| s.text.as_str()).collect();
    let doc = JsonTranscript {
        text: text.trim().to_string(),
        language: t.language,
        language_probabilities: t
            .language_probabilities
            .iter()
            .take(3)
            .map(|l| JsonLanguage {
                language: &l.code,
                probability: f64::from(l.probability),
            })
            .collect(),
        segments: t
            .segments
            .iter()
            .enumerate()
            .map(|(id, s)| JsonSegment {
                id,
                seek: s.seek,
                start: s.start,
                end: s.end,
                text: &s.text,
                tokens: &s.tokens,
                temperature: s.temperature,
                avg_logprob: s.avg_logprob,
                compression_ratio: s.compression_ratio,
                no_speech_prob: s.no_speech_prob,
            })
            .collect(),
    };
    let mut out = serde_json::to_string_pretty(&doc).expect("plain data serializes");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(start: f64, end: f64, text: &str) -> Segment {
        Segment {
            start,
            end,
            text: text.into(),
            tokens: vec![50364, 440, 50464],
            avg_logprob: -0.25,
            no_speech_prob: 0.01,
            compression_ratio: 1.2,
            temperature: 0.0,
            seek: 0,
        }
    }

    fn sample() -> Vec<Segment> {
        vec![
            segment(0.0, 2.5, " Hello there."),
            segment(2.5, 2.5, "   "),
            segment(3661.04, 3662.5, " Over\tan hour --> later\nstill."),
        ]
    }

    fn render_sample(format: TranscriptFormat) -> String {
        let segments = sample();
        render(
            format,
            &Transcript {
                language: "en",
                language_probabilities: &[],
                segments: &segments,
            },
        )
    }

    #[test]
    fn srt_numbers_cues_and_skips_empty_segments() {
        assert_eq!(
            render_sample(TranscriptFormat::Srt),
            "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n\
             2\n01:01:01,040 --> 01:01:02,500\nOver an hour -> later still.\n\n"
        );
    }

    #[test]
    fn vtt_has_its_header_and_dots() {
        assert_eq!(
            render_sample(TranscriptFormat::Vtt),
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n\
             01:01:01.040 --> 01:01:02.500\nOver an hour -> later still.\n\n"
        );
    }

    #[test]
    fn tsv_and_txt() {
        assert_eq!(
            render_sample(TranscriptFormat::Tsv),
            "start\tend\ttext\n0\t2500\tHello there.\n3661040\t3662500\tOver an hour -> later still.\n"
        );
        assert_eq!(
            render_sample(TranscriptFormat::Txt),
            "Hello there.\nOver an hour -> later still.\n"
        );
    }

    #[test]
    fn json_keeps_the_fields_and_the_top_three_languages() {
        let segments = sample();
        let langs: Vec<LanguageProbability> = ["de", "en", "nl", "fr"]
            .iter()
            .zip([0.5f32, 0.3, 0.1, 0.05])
            .map(|(c, p)| LanguageProbability {
                code: c.to_string(),
                probability: p,
            })
            .collect();
        let text = render(
            TranscriptFormat::Json,
            &Transcript {
                language: "de",
                language_probabilities: &langs,
                segments: &segments,
            },
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["language"], "de");
        let top = v["language_probabilities"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(top[2]["language"], "nl");
        let s = &v["segments"][0];
        for key in [
            "start",
            "end",
            "text",
            "tokens",
            "avg_logprob",
            "no_speech_prob",
            "compression_ratio",
        ] {
            assert!(!s[key].is_null(), "{key} missing");
        }
        assert_eq!(s["text"], " Hello there.");
        assert_eq!(v["segments"].as_array().unwrap().len(), 3);
    }
}
