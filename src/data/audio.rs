//! Audio in: WAV (hound: 8/16/24/32-bit int, 32-bit float) and FLAC (symphonia), mixed to mono and
//! resampled to 16 kHz with rubato.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct AudioError {
    pub path: PathBuf,
    pub what: String,
}

fn err(path: &Path, what: impl Into<String>) -> AudioError {
    AudioError {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Mono samples in [-1, 1] at `rate` Hz.
#[derive(Debug, Clone)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub rate: u32,
}

impl Audio {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }
}

/// Loads a WAV or FLAC file (decided by its first bytes, not its name) as 16 kHz mono.
pub fn load_16k(path: &Path) -> Result<Audio, AudioError> {
    let audio = load(path)?;
    if audio.samples.is_empty() {
        return Err(err(path, "zero-length audio (no samples)"));
    }
    resample(path, audio, 16_000)
}

pub fn load(path: &Path) -> Result<Audio, AudioError> {
    let mut head = [0u8; 4];
    {
        use std::io::Read;
        let mut f =
            std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
        let n = f
            .read(&mut head)
            .map_err(|e| err(path, format!("cannot read: {e}")))?;
        if n < 4 {
            return Err(err(path, "not a WAV or FLAC file (too short)"));
        }
    }
    match &head {
        b"RIFF" => load_wav(path),
        b"fLaC" => load_flac(path),
        _ => Err(err(path, "not a WAV or FLAC file (unknown header)")),
    }
}

fn load_wav(path: &Path) -> Result<Audio, AudioError> {
    let mut r = hound::WavReader::open(path).map_err(|e| err(path, format!("invalid WAV: {e}")))?;
    let spec = r.spec();
    let channels = spec.channels as usize;
    if channels == 0 {
        return Err(err(path, "WAV declares 0 channels"));
    }
    let declared = r.len() as usize;
    let truncated = |declared: usize| {
        err(
            path,
            format!(
                "truncated WAV: the data chunk declares {declared} samples but the file ends early"
            ),
        )
    };
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => r.samples::<f32>().collect::<Result<_, _>>(),
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            r.samples::<i32>()
                .map(|s| s.map(|v| (v as f64 * scale) as f32))
                .collect::<Result<_, _>>()
        }
        (fmt, bits) => {
            return Err(err(
                path,
                format!("unsupported WAV sample format: {bits}-bit {fmt:?}"),
            ))
        }
    }
    .map_err(|e| match e {
        // hound reports a short data chunk as UnexpectedEof or as an `Other` "Failed to read enough bytes".
        hound::Error::IoError(io)
            if io.kind() == std::io::ErrorKind::UnexpectedEof
                || io.to_string().contains("enough bytes") =>
        {
            truncated(declared)
        }
        other => err(path, format!("invalid WAV data: {other}")),
    })?;
    if interleaved.len() != declared {
        return Err(err(
            path,
            format!(
                "truncated WAV: {} of {declared} declared samples present",
                interleaved.len()
            ),
        ));
    }
    Ok(Audio {
        samples: mix_to_mono(&interleaved, channels),
        rate: spec.sample_rate,
    })
}

fn load_flac(path: &Path) -> Result<Audio, AudioError> {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::DecoderOptions;
    use symphonia::core::errors::Error as SymErr;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;

    let file = std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("flac");
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| err(path, format!("invalid FLAC: {e}")))?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .ok_or_else(|| err(path, "FLAC has no audio track"))?;
    let params = track.codec_params.clone();
    let track_id = track.id;
    let channels = params.channels.map(|c| c.count()).unwrap_or(0);
    if channels == 0 {
        return Err(err(path, "FLAC declares no channels"));
    }
    let rate = params
        .sample_rate
        .ok_or_else(|| err(path, "FLAC declares no sample rate"))?;
    let declared = params.n_frames;
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions { verify: true })
        .map_err(|e| err(path, format!("unsupported FLAC stream: {e}")))?;
    let mut interleaved = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymErr::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(err(path, format!("corrupt FLAC: {e}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder
            .decode(&packet)
            .map_err(|e| err(path, format!("corrupt FLAC frame: {e}")))?;
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        buf.copy_interleaved_ref(decoded);
        interleaved.extend_from_slice(buf.samples());
    }
    let frames = interleaved.len() / channels;
    if let Some(n) = declared {
        if (frames as u64) < n {
            return Err(err(
                path,
                format!("truncated FLAC: {frames} of {n} declared samples decoded"),
            ));
        }
    }
    Ok(Audio {
        samples: mix_to_mono(&interleaved, channels),
        rate,
    })
}

fn mix_to_mono(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|f| f.iter().sum::<f32>() / channels as f32)
        .collect()
}

fn resample(path: &Path, audio: Audio, to: u32) -> Result<Audio, AudioError> {
    use rubato::{FftFixedIn, Resampler};
    if audio.rate == to {
        return Ok(audio);
    }
    if audio.rate == 0 {
        return Err(err(path, "sample rate 0"));
    }
    let chunk = 1024;
    let mut r = FftFixedIn::<f32>::new(audio.rate as usize, to as usize, chunk, 2, 1)
        .map_err(|e| err(path, format!("cannot resample from {} Hz: {e}", audio.rate)))?;
    let delay = r.output_delay();
    let input = &audio.samples;
    let mut out = Vec::with_capacity(input.len() * to as usize / audio.rate as usize + 2 * chunk);
    let mut pos = 0;
    let rs_err = |e: rubato::ResampleError| err(path, format!("resampling failed: {e}"));
    while input.len() - pos >= r.input_frames_next() {
        let n = r.input_frames_next();
        let o = r.process(&[&input[pos..pos + n]], None).map_err(rs_err)?;
        out.extend_from_slice(&o[0]);
        pos += n;
    }
    if pos < input.len() {
        let o = r
            .process_partial(Some(&[&input[pos..]]), None)
            .map_err(rs_err)?;
        out.extend_from_slice(&o[0]);
    }
    // Flush the resampler's delay line.
    while out.len() < delay + input.len() * to as usize / audio.rate as usize {
        let o = r.process_partial::<&[f32]>(None, None).map_err(rs_err)?;
        if o[0].is_empty() {
            break;
        }
        out.extend_from_slice(&o[0]);
    }
    let expected = (input.len() as u64 * to as u64 / audio.rate as u64) as usize;
    let end = (delay + expected).min(out.len());
    Ok(Audio {
        samples: out[delay.min(end)..end].to_vec(),
        rate: to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, spec: hound::WavSpec, frames: usize) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..frames * spec.channels as usize {
            let v = ((i as f32) * 0.01).sin() * 0.5;
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => w.write_sample(v).unwrap(),
                (_, 8) => w.write_sample((v * 127.0) as i8).unwrap(),
                (_, 16) => w.write_sample((v * 32767.0) as i16).unwrap(),
                (_, 24) => w.write_sample((v * 8_388_607.0) as i32).unwrap(),
                _ => w.write_sample((v * 2_147_483_647.0) as i32).unwrap(),
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn every_wav_sample_format_loads_to_the_same_signal() {
        let dir = tempfile::tempdir().unwrap();
        let mut ref_first = None;
        for (fmt, bits) in [
            (hound::SampleFormat::Int, 8),
            (hound::SampleFormat::Int, 16),
            (hound::SampleFormat::Int, 24),
            (hound::SampleFormat::Int, 32),
            (hound::SampleFormat::Float, 32),
        ] {
            let p = dir.path().join(format!("{bits}{fmt:?}.wav"));
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: 16_000,
                bits_per_sample: bits,
                sample_format: fmt,
            };
            write_wav(&p, spec, 1600);
            let a = load_16k(&p).unwrap();
            assert_eq!(a.samples.len(), 1600);
            let s = a.samples[100];
            let r = *ref_first.get_or_insert(s);
            assert!((s - r).abs() < 0.02, "{bits}-bit {fmt:?}: {s} vs {r}");
        }
    }

    #[test]
    fn resampling_keeps_duration_and_tone() {
        let rate = 22_050;
        let n = rate * 2;
        let tone: Vec<f32> = (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin())
            .collect();
        let a = resample(
            Path::new("x"),
            Audio {
                samples: tone,
                rate: rate as u32,
            },
            16_000,
        )
        .unwrap();
        assert_eq!(a.samples.len(), 32_000);
        // Compare with the ideal 440 Hz tone at 16 kHz away from the edges.
        for i in (1000..31_000).step_by(997) {
            let ideal = (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16_000.0).sin();
            assert!(
                (a.samples[i] - ideal).abs() < 0.02,
                "sample {i}: {} vs {ideal}",
                a.samples[i]
            );
        }
    }

    #[test]
    fn bad_inputs_name_the_file_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.wav");
        assert!(load_16k(&missing)
            .unwrap_err()
            .to_string()
            .contains("missing.wav: cannot open"));

        let text = dir.path().join("notes.wav");
        std::fs::write(&text, b"hello world, not audio").unwrap();
        assert!(load_16k(&text)
            .unwrap_err()
            .to_string()
            .contains("not a WAV or FLAC"));

        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let full = dir.path().join("full.wav");
        write_wav(&full, spec, 4000);
        let bytes = std::fs::read(&full).unwrap();
        let cut = dir.path().join("cut.wav");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let e = load_16k(&cut).unwrap_err().to_string();
        assert!(e.contains("cut.wav") && e.contains("truncated"), "{e}");

        let empty = dir.path().join("empty.wav");
        write_wav(&empty, spec, 0);
        assert!(load_16k(&empty)
            .unwrap_err()
            .to_string()
            .contains("zero-length"));

        let odd = dir.path().join("odd.wav");
        let spec12 = hound::WavSpec {
            bits_per_sample: 64,
            sample_format: hound::SampleFormat::Float,
            ..spec
        };
        // hound cannot write 64-bit float; patch a 32-bit float header's bits field instead.
        write_wav(
            &odd,
            hound::WavSpec {
                bits_per_sample: 32,
                ..spec12
            },
            100,
        );
        let mut b = std::fs::read(&odd).unwrap();
        let fmt = b.windows(4).position(|w| w == b"fmt ").unwrap();
        b[fmt + 22] = 64;
        std::fs::write(&odd, &b).unwrap();
        let e = load_16k(&odd).unwrap_err().to_string();
        assert!(e.contains("odd.wav"), "{e}");
    }
}
