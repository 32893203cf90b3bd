//! Long recordings composed from short clips with known silences between them: a spec file
//! (`datasets/speech-long/recordings.toml`) names the clips, the silences and the manifests that hold the
//! clips' reference texts; [`compose`] lays them end to end at 16 kHz and says where each clip lies.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::audio::{self, AudioLimits};
use super::manifest::{self, ManifestError};

const RATE: u32 = 16_000;
/// Longest silence a spec may ask for, in seconds (a typo must not ask for gigabytes of zeros).
const MAX_SILENCE_S: f64 = 60.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    manifests: Vec<PathBuf>,
    recording: Vec<RecordingToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingToml {
    name: String,
    #[serde(default)]
    lead_s: f64,
    #[serde(default)]
    tail_s: f64,
    gaps_s: Vec<f64>,
    clips: Vec<PathBuf>,
}

/// One recording of a spec, its paths resolved and its texts found.
#[derive(Debug, Clone)]
pub struct RecordingSpec {
    pub name: String,
    /// Silence before the first clip and after the last, in seconds.
    pub lead_s: f64,
    pub tail_s: f64,
    /// Silences between clips, taken in turn.
    pub gaps_s: Vec<f64>,
    /// Each clip's file (resolved against the spec's folder), as written, and reference text.
    pub clips: Vec<(PathBuf, String, String)>,
}

/// Where a clip lies in its recording.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSpan {
    /// As the spec names it.
    pub audio_rel: String,
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// A composed recording: 16 kHz mono samples on the 16-bit grid (a WAV written from it reads back the
/// same), and its clips in order.
#[derive(Debug, Clone)]
pub struct Recording {
    pub name: String,
    pub samples: Vec<f32>,
    pub clips: Vec<ClipSpan>,
}

impl Recording {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(RATE)
    }

    /// The clips' references joined with spaces.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self.clips.iter().map(|c| c.text.trim()).collect();
        texts.join(" ")
    }

    /// Each join between clips: (end of the clip before, start of the clip after), in seconds.
    pub fn joins(&self) -> Vec<(f64, f64)> {
        self.clips
            .windows(2)
            .map(|w| (w[0].end, w[1].start))
            .collect()
    }
}

/// Reads a spec: every clip must be in one of its manifests, every silence in [0, 60] s.
pub fn load_spec(path: &Path) -> Result<Vec<RecordingSpec>, ManifestError> {
    let err = |what: String| ManifestError {
        path: path.to_path_buf(),
        line: None,
        what,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let spec: SpecFile = toml::from_str(&text).map_err(|e| err(e.message().to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut texts = std::collections::HashMap::new();
    for m in &spec.manifests {
        for item in manifest::load_speech(&dir.join(m))? {
            texts.insert(normal(&item.audio), item.text);
        }
    }
    if spec.recording.is_empty() {
        return Err(err("no [[recording]]".into()));
    }
    spec.recording
        .into_iter()
        .map(|r| {
            let silences = r.gaps_s.iter().chain([&r.lead_s, &r.tail_s]);
            if let Some(bad) = silences
                .into_iter()
                .find(|s| !(0.0..=MAX_SILENCE_S).contains(*s))
            {
                return Err(err(format!(
                    "recording {}: a silence of {bad} s (from 0 to {MAX_SILENCE_S} s)",
                    r.name
                )));
            }
            if r.clips.is_empty() {
                return Err(err(format!("recording {}: no clips", r.name)));
            }
            if r.clips.len() > 1 && r.gaps_s.is_empty() {
                return Err(err(format!("recording {}: gaps_s is empty", r.name)));
            }
            let clips = r
                .clips
                .iter()
                .map(|c| {
                    let file = dir.join(c);
                    let text = texts.get(&normal(&file)).cloned().ok_or_else(|| {
                        err(format!(
                            "recording {}: {} is in none of the manifests",
                            r.name,
                            c.display()
                        ))
                    })?;
                    Ok((file, c.display().to_string(), text))
                })
                .collect::<Result<_, _>>()?;
            Ok(RecordingSpec {
                name: r.name,
                lead_s: r.lead_s,
                tail_s: r.tail_s,
                gaps_s: r.gaps_s,
                clips,
            })
        })
        .collect()
}

/// A path with `.` and `..` taken out, so a clip named through another folder matches its manifest line.
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Lays the spec's clips end to end with its silences.
pub fn compose(spec: &RecordingSpec, limits: &AudioLimits) -> Result<Recording, audio::AudioError> {
    let silence = |s: f64| vec![0.0f32; (s * f64::from(RATE)).round() as usize];
    let mut samples = silence(spec.lead_s);
    let mut clips = Vec::with_capacity(spec.clips.len());
    for (i, (file, audio_rel, text)) in spec.clips.iter().enumerate() {
        if i > 0 {
            samples.extend(silence(spec.gaps_s[(i - 1) % spec.gaps_s.len()]));
        }
        let clip = audio::load_16k_within(file, limits)?;
        let start = samples.len() as f64 / f64::from(RATE);
        samples.extend(clip.samples.iter().map(|&s| on_16_bit_grid(s)));
        clips.push(ClipSpan {
            audio_rel: audio_rel.clone(),
            start,
            end: samples.len() as f64 / f64::from(RATE),
            text: text.clone(),
        });
        let seconds = samples.len() as f64 / f64::from(RATE);
        if seconds > limits.max_seconds {
            return Err(audio::AudioError {
                path: file.clone(),
                what: format!(
                    "recording {} passes the {} s limit here ({seconds:.1} s)",
                    spec.name, limits.max_seconds
                ),
            });
        }
    }
    samples.extend(silence(spec.tail_s));
    Ok(Recording {
        name: spec.name.clone(),
        samples,
        clips,
    })
}

fn on_16_bit_grid(s: f32) -> f32 {
    (s * 32768.0).round().clamp(-32768.0, 32767.0) / 32768.0
}

/// The recording as a 16 kHz 16-bit WAV, written atomically.
pub fn write_wav(recording: &Recording, path: &Path) -> std::io::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut bytes, spec).map_err(std::io::Error::other)?;
        for &s in &recording.samples {
            w.write_sample((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
                .map_err(std::io::Error::other)?;
        }
        w.finalize().map_err(std::io::Error::other)?;
    }
    crate::fsutil::write_atomic(path, bytes.get_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(dir: &Path, name: &str, seconds: f64) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(dir.join(name), spec).unwrap();
        for i in 0..(seconds * 8000.0) as usize {
            w.write_sample(((i as f32 * 0.05).sin() * 8000.0) as i16)
                .unwrap();
        }
        w.finalize().unwrap();
    }

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let clips = dir.path().join("clips");
        std::fs::create_dir(&clips).unwrap();
        tone(&clips, "a.wav", 1.0);
        tone(&clips, "b.wav", 0.5);
        std::fs::write(
            clips.join("manifest.jsonl"),
            "{\"audio\": \"a.wav\", \"text\": \"first\"}\n{\"audio\": \"b.wav\", \"text\": \"second\"}\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("long")).unwrap();
        dir
    }

    fn spec(dir: &Path, body: &str) -> Result<Vec<RecordingSpec>, ManifestError> {
        let path = dir.join("long/spec.toml");
        std::fs::write(
            &path,
            format!("manifests = [\"../clips/manifest.jsonl\"]\n{body}"),
        )
        .unwrap();
        load_spec(&path)
    }

    #[test]
    fn clips_land_where_the_silences_put_them() {
        let dir = fixture();
        let specs = spec(
            dir.path(),
            "[[recording]]\nname = \"r\"\nlead_s = 0.25\ntail_s = 0.5\ngaps_s = [1.0, 2.0]\n\
             clips = [\"../clips/a.wav\", \"../clips/b.wav\", \"../clips/./a.wav\"]\n",
        )
        .unwrap();
        let r = compose(&specs[0], &AudioLimits::default()).unwrap();
        let spans: Vec<(f64, f64)> = r.clips.iter().map(|c| (c.start, c.end)).collect();
        assert_eq!(spans, vec![(0.25, 1.25), (2.25, 2.75), (4.75, 5.75)]);
        assert_eq!(r.joins(), vec![(1.25, 2.25), (2.75, 4.75)]);
        assert_eq!(r.duration_s(), 6.25);
        assert_eq!(r.text(), "first second first");
        // Silence is silence; the clips are there.
        assert!(r.samples[..4000].iter().all(|&s| s == 0.0));
        assert!(r.samples[4000..20000].iter().any(|&s| s.abs() > 0.1));
        // The WAV reads back sample for sample.
        let wav = dir.path().join("r.wav");
        write_wav(&r, &wav).unwrap();
        assert_eq!(audio::load_16k(&wav).unwrap().samples, r.samples);
    }

    #[test]
    fn bad_specs_are_named() {
        let dir = fixture();
        let e = spec(
            dir.path(),
            "[[recording]]\nname = \"r\"\ngaps_s = [1e9]\nclips = [\"../clips/a.wav\"]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("silence of 1000000000 s"), "{e}");
        let e = spec(
            dir.path(),
            "[[recording]]\nname = \"r\"\ngaps_s = [1]\nclips = [\"../clips/c.wav\"]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("c.wav is in none of the manifests"),
            "{e}"
        );
        let e = spec(dir.path(), "[[recording]]\nname = \"r\"\ngaps = [1]\n").unwrap_err();
        assert!(e.to_string().contains("spec.toml"), "{e}");
        let e = spec(
            dir.path(),
            "[[recording]]\nname = \"r\"\ngaps_s = []\nclips = [\"../clips/a.wav\", \"../clips/b.wav\"]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("gaps_s is empty"), "{e}");
    }

    #[test]
    fn the_bundled_recordings_are_two_minutes_or_more() {
        let specs = load_spec(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/datasets/speech-long/recordings.toml"
        )))
        .unwrap();
        assert_eq!(specs.len(), 2);
        for s in &specs {
            let r = compose(s, &AudioLimits::default()).unwrap();
            assert!(
                (120.0..=300.0).contains(&r.duration_s()),
                "{}: {}",
                s.name,
                r.duration_s()
            );
        }
        assert_eq!(specs[0].clips.len(), 15);
    }
}
