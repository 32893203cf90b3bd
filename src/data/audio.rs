//! Audio in: WAV (hound: 8/16/24/32-bit int, 32-bit float); FLAC, MP3, AAC, Ogg Vorbis and the audio
//! track of MP4/MOV/MKV/WebM (symphonia), mixed to mono and resampled to 16 kHz with rubato. Every size a header declares is checked before anything is allocated
//! by it: the sample rate against [`RATES`], the length against the file's size and [`AudioLimits`].

use std::io::{Read, Seek};
use std::ops::RangeInclusive;
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

/// Sample rates accepted from a header: telephone-band 4 kHz up to studio 384 kHz.
pub const RATES: RangeInclusive<u32> = 4_000..=384_000;
/// Channels accepted from a header (WAV allows 65 535).
pub const MAX_CHANNELS: usize = 64;

/// What a clip may be; set with `--max-audio-seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioLimits {
    pub max_seconds: f64,
}

impl AudioLimits {
    pub const DEFAULT_MAX_SECONDS: f64 = 2.0 * 3600.0;

    fn check_duration(&self, path: &Path, frames: u64, rate: u32) -> Result<(), AudioError> {
        let seconds = frames as f64 / f64::from(rate);
        if seconds > self.max_seconds {
            return Err(err(
                path,
                format!(
                    "the audio is {} long, over the limit of {} (raise it with --max-audio-seconds)",
                    hms(seconds),
                    hms(self.max_seconds)
                ),
            ));
        }
        Ok(())
    }
}

impl Default for AudioLimits {
    fn default() -> Self {
        AudioLimits {
            max_seconds: Self::DEFAULT_MAX_SECONDS,
        }
    }
}

fn hms(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
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

/// Loads an audio file (its container decided by its first bytes, not its name) as 16 kHz mono, within the default
/// limits.
pub fn load_16k(path: &Path) -> Result<Audio, AudioError> {
    load_16k_within(path, &AudioLimits::default())
}

pub fn load_16k_within(path: &Path, limits: &AudioLimits) -> Result<Audio, AudioError> {
    let file = std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
    let len = file
        .metadata()
        .map_err(|e| err(path, format!("cannot read: {e}")))?
        .len();
    decode_16k(path, file, len, limits)
}

/// [`load_16k_within`] on any reader of `len` bytes; `path` only names it in errors.
pub fn decode_16k<R: Read + Seek + Send + Sync + 'static>(
    path: &Path,
    reader: R,
    len: u64,
    limits: &AudioLimits,
) -> Result<Audio, AudioError> {
    let audio = decode(path, reader, len, limits)?;
    if audio.samples.is_empty() {
        return Err(err(path, "zero-length audio (no samples)"));
    }
    if let Some(i) = audio.samples.iter().position(|s| !s.is_finite()) {
        return Err(err(
            path,
            format!(
                "sample {i} is {} (a float WAV must hold finite values)",
                audio.samples[i]
            ),
        ));
    }
    resample(path, audio, 16_000)
}

/// Decodes at the file's own rate, mixed to mono.
pub fn load(path: &Path) -> Result<Audio, AudioError> {
    let file = std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
    let len = file
        .metadata()
        .map_err(|e| err(path, format!("cannot read: {e}")))?
        .len();
    decode(path, file, len, &AudioLimits::default())
}

fn decode<R: Read + Seek + Send + Sync + 'static>(
    path: &Path,
    mut reader: R,
    len: u64,
    limits: &AudioLimits,
) -> Result<Audio, AudioError> {
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(path, format!("cannot read: {e}"))),
        }
    }
    if got < 4 {
        return Err(err(path, format!("{NOT_AUDIO} (too short)")));
    }
    reader
        .rewind()
        .map_err(|e| err(path, format!("cannot read: {e}")))?;
    if &head[..4] == b"RIFF" {
        decode_wav(path, reader, len, limits)
    } else {
        without_panics(path, || {
            decode_with_symphonia(path, reader, len, &head, limits)
        })
    }
}

thread_local! {
    static IN_DECODER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// symphonia's readers can still panic on hostile input (its Matroska reader unwraps a timestamp scale
/// over `u32::MAX`): such a panic becomes an error naming the file, and the panic hook stays quiet for it.
fn without_panics(
    path: &Path,
    decode: impl FnOnce() -> Result<Audio, AudioError>,
) -> Result<Audio, AudioError> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_DECODER.with(|d| d.get()) {
                previous(info);
            }
        }));
    });
    IN_DECODER.with(|d| d.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    IN_DECODER.with(|d| d.set(false));
    result.unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(err(
            path,
            format!("malformed audio file: the decoder gave up on it ({why})"),
        ))
    })
}

/// The start of the error for a file no reader recognises.
const NOT_AUDIO: &str = "not an audio file quantbench reads (WAV, FLAC, MP3, AAC/M4A, Ogg Vorbis, or the audio track of MP4/MOV/MKV/WebM)";

fn check_rate(path: &Path, rate: u32) -> Result<(), AudioError> {
    if !RATES.contains(&rate) {
        return Err(err(
            path,
            format!(
                "sample rate {rate} Hz is outside {}..={} Hz",
                RATES.start(),
                RATES.end()
            ),
        ));
    }
    Ok(())
}

fn check_channels(path: &Path, channels: usize) -> Result<(), AudioError> {
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(err(
            path,
            format!("{channels} channels declared (1..={MAX_CHANNELS} accepted)"),
        ));
    }
    Ok(())
}

fn decode_wav<R: Read>(
    path: &Path,
    reader: R,
    len: u64,
    limits: &AudioLimits,
) -> Result<Audio, AudioError> {
    let mut r = hound::WavReader::new(std::io::BufReader::new(reader))
        .map_err(|e| err(path, format!("invalid WAV: {e}")))?;
    let spec = r.spec();
    let channels = usize::from(spec.channels);
    check_channels(path, channels)?;
    check_rate(path, spec.sample_rate)?;
    let declared = u64::from(r.len());
    limits.check_duration(path, u64::from(r.duration()), spec.sample_rate)?;
    // The samples are collected into a vector sized from the header: a data chunk larger than the file
    // is truncated, whatever it claims.
    let bytes_per_sample = u64::from(spec.bits_per_sample).div_ceil(8).max(1);
    if declared.saturating_mul(bytes_per_sample) > len {
        return Err(err(
            path,
            format!(
                "truncated WAV: the data chunk declares {declared} samples ({} bytes) but the file has {len} bytes",
                declared.saturating_mul(bytes_per_sample)
            ),
        ));
    }
    let truncated = || {
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
            truncated()
        }
        other => err(path, format!("invalid WAV data: {other}")),
    })?;
    if interleaved.len() as u64 != declared {
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

/// What the first bytes say the container is, for errors raised before a reader knows more.
fn container_from_header(head: &[u8; 12]) -> Option<&'static str> {
    match head {
        [b'f', b'L', b'a', b'C', ..] => Some("FLAC"),
        [b'O', b'g', b'g', b'S', ..] => Some("Ogg"),
        [b'I', b'D', b'3', ..] => Some("MP3"),
        [0x1a, 0x45, 0xdf, 0xa3, ..] => Some("Matroska/WebM"),
        [_, _, _, _, b'f', b't', b'y', b'p', ..]
        | [_, _, _, _, b'm', b'o', b'o', b'v', ..]
        | [_, _, _, _, b'm', b'd', b'a', b't', ..]
        | [_, _, _, _, b'w', b'i', b'd', b'e', ..]
        | [_, _, _, _, b'f', b'r', b'e', b'e', ..] => Some("MP4/MOV"),
        [0xff, b, ..] if b & 0xf6 == 0xf0 => Some("AAC (ADTS)"),
        [0xff, b, ..] if b & 0xe0 == 0xe0 => Some("MP3"),
        _ => None,
    }
}

/// A codec's name in errors; `None` when symphonia does not name it either.
fn codec_name(codec: symphonia::core::codecs::CodecType) -> String {
    use symphonia::core::codecs::*;
    let known = [
        (CODEC_TYPE_FLAC, "FLAC"),
        (CODEC_TYPE_MP3, "MP3"),
        (CODEC_TYPE_MP2, "MP2"),
        (CODEC_TYPE_MP1, "MP1"),
        (CODEC_TYPE_AAC, "AAC"),
        (CODEC_TYPE_VORBIS, "Vorbis"),
        (CODEC_TYPE_ALAC, "ALAC"),
        (CODEC_TYPE_OPUS, "Opus"),
        (CODEC_TYPE_SPEEX, "Speex"),
        (CODEC_TYPE_EAC3, "E-AC-3"),
        (CODEC_TYPE_AC4, "AC-4"),
        (CODEC_TYPE_DCA, "DTS"),
        (CODEC_TYPE_WMA, "WMA"),
        (CODEC_TYPE_WAVPACK, "WavPack"),
        (CODEC_TYPE_MONKEYS_AUDIO, "Monkey's Audio"),
        (CODEC_TYPE_TTA, "TTA"),
        (CODEC_TYPE_MUSEPACK, "Musepack"),
    ];
    if let Some((_, name)) = known.iter().find(|(c, _)| *c == codec) {
        return (*name).into();
    }
    match symphonia::default::get_codecs().get_codec(codec) {
        Some(d) => d.short_name.to_uppercase(),
        None => format!("codec {codec}"),
    }
}

/// A reader symphonia may seek in (an MP4's index is often at its end), of a known length.
struct Seekable<R> {
    inner: R,
    len: u64,
}

impl<R: Read> Read for Seekable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for Seekable<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<R: Read + Seek + Send + Sync> symphonia::core::io::MediaSource for Seekable<R> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

/// Everything but WAV: FLAC, MP3, AAC (ADTS or in MP4/M4A/MOV), Ogg Vorbis, and the first audio track of
/// an MP4/MOV or Matroska/WebM video, through symphonia's readers and decoders.
fn decode_with_symphonia<R: Read + Seek + Send + Sync + 'static>(
    path: &Path,
    reader: R,
    len: u64,
    head: &[u8; 12],
    limits: &AudioLimits,
) -> Result<Audio, AudioError> {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::{
        DecoderOptions, CODEC_TYPE_FLAC, CODEC_TYPE_NULL, CODEC_TYPE_OPUS,
    };
    use symphonia::core::errors::Error as SymErr;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;

    let container = container_from_header(head).ok_or_else(|| err(path, NOT_AUDIO))?;
    let source = Seekable { inner: reader, len };
    let mss = MediaSourceStream::new(Box::new(source), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            // Gapless: the encoder's delay and padding are trimmed (MP3's LAME tag, Vorbis), so the
            // samples start where the recording does, as ffmpeg's do.
            &FormatOptions {
                enable_gapless: true,
                ..Default::default()
            },
            &MetadataOptions::default(),
        )
        .map_err(|e| err(path, format!("invalid {container}: {e}")))?;
    let mut format = probed.format;
    // Video and subtitle tracks carry no codec symphonia knows (CODEC_TYPE_NULL).
    let Some(track) = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
    else {
        // A reader that does not know a track's codec leaves it null; an audio track still has a rate.
        let audio = format
            .tracks()
            .iter()
            .any(|t| t.codec_params.sample_rate.is_some());
        return Err(err(
            path,
            if audio {
                format!(
                    "unsupported audio codec in this {container} file (one symphonia does not know, e.g. AC-3 or DTS); \
                     convert it first, e.g. `ffmpeg -i IN -ar 16000 OUT.flac`"
                )
            } else {
                format!("no audio track in this {container} file (only video or data)")
            },
        ));
    };
    let params = track.codec_params.clone();
    let track_id = track.id;
    let codec = codec_name(params.codec);
    if params.codec == CODEC_TYPE_OPUS {
        return Err(err(
            path,
            "unsupported audio codec Opus: quantbench has no Opus decoder (symphonia has none, and no \
             pure-Rust one is maintained yet); convert it first, e.g. `ffmpeg -i IN -ar 16000 OUT.flac`",
        ));
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions { verify: true })
        .map_err(|_| {
            err(
                path,
                format!(
                    "unsupported audio codec {codec} in this {container} file; convert it first, e.g. \
                     `ffmpeg -i IN -ar 16000 OUT.flac`"
                ),
            )
        })?;
    if let Some(c) = params.channels {
        check_channels(path, c.count())?;
    }
    let mut rate = params.sample_rate;
    if let Some(r) = rate {
        check_rate(path, r)?;
    }
    // A declared length of 0 means "unknown" (streamed FLAC, MP3 without a Xing header, Ogg): the decoded
    // length is then checked against the limit as it grows. Matroska declares its length in its own
    // time base, not in samples.
    let declared = params
        .n_frames
        .filter(|&n| n > 0)
        .map(|n| match (params.time_base, rate) {
            (Some(tb), Some(r)) if tb.denom != r => {
                let frames = u128::from(n) * u128::from(tb.numer) * u128::from(r)
                    / u128::from(tb.denom.max(1));
                u64::try_from(frames).unwrap_or(u64::MAX)
            }
            _ => n,
        });
    if let (Some(n), Some(r)) = (declared, rate) {
        limits.check_duration(path, n, r)?;
    }
    // Only FLAC's own STREAMINFO counts samples exactly; a container's duration is rounded.
    let is_flac = params.codec == CODEC_TYPE_FLAC;
    let exact_length = is_flac && container == "FLAC";
    let has_md5 = params.verification_check.is_some();
    let mut mono = Vec::new();
    let mut frames: u64 = 0;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymErr::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymErr::ResetRequired) => {
                return Err(err(
                    path,
                    format!("{codec} stream changes its parameters mid-way"),
                ))
            }
            Err(e) => return Err(err(path, format!("corrupt {container}: {e}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder
            .decode(&packet)
            .map_err(|e| err(path, format!("corrupt {codec} frame: {e}")))?;
        let spec = *decoded.spec();
        let channels = spec.channels.count();
        check_channels(path, channels)?;
        if params.channels.is_some_and(|c| c.count() != channels) {
            return Err(err(
                path,
                format!("corrupt {codec}: a frame's channel count differs from the stream's"),
            ));
        }
        match rate {
            None => {
                check_rate(path, spec.rate)?;
                rate = Some(spec.rate);
            }
            Some(r) if r != spec.rate => {
                return Err(err(
                    path,
                    format!(
                        "{codec} stream changes its sample rate mid-way ({r} → {} Hz)",
                        spec.rate
                    ),
                ))
            }
            Some(_) => {}
        }
        let mut b = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        b.copy_interleaved_ref(decoded);
        mono.extend(mix_to_mono(b.samples(), channels));
        frames = mono.len() as u64;
        let r = rate.unwrap_or(spec.rate);
        match declared {
            Some(n) if frames > n && exact_length => {
                return Err(err(
                    path,
                    format!("corrupt FLAC: more samples decoded than the {n} STREAMINFO declares"),
                ))
            }
            Some(n) if frames <= n => {}
            _ => limits.check_duration(path, frames, r)?,
        }
    }
    let rate = rate.ok_or_else(|| err(path, format!("{codec} stream holds no audio")))?;
    if let Some(n) = declared {
        // Lossy codecs' declared lengths may count encoder padding a decoder trims, and a container's
        // duration is rounded: up to a tenth of a second (at least one AAC frame) is not a truncation.
        let slack = if exact_length {
            0
        } else {
            u64::from(rate / 10).max(2_048)
        };
        if frames + slack < n {
            return Err(err(
                path,
                format!("truncated {codec}: {frames} of {n} declared samples decoded"),
            ));
        }
    }
    if decoder.finalize().verify_ok == Some(false) {
        return Err(err(
            path,
            "corrupt FLAC: the decoded audio does not match STREAMINFO's MD5",
        ));
    }
    if is_flac && declared.is_none() && !has_md5 {
        // Neither a count nor a checksum: nothing can tell a cut-off stream from a whole one.
        return Err(err(
            path,
            "FLAC declares neither its length nor an MD5 in STREAMINFO, so truncation cannot be ruled out; re-encode it (flac -f)",
        ));
    }
    Ok(Audio {
        samples: mono,
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

    fn wav_with(dir: &Path, name: &str, spec: hound::WavSpec, frames: usize) -> PathBuf {
        let p = dir.join(name);
        write_wav(&p, spec, frames);
        p
    }

    const MONO16: hound::WavSpec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };

    /// The byte offset of a WAV's `fmt ` chunk body.
    fn fmt_body(bytes: &[u8]) -> usize {
        bytes.windows(4).position(|w| w == b"fmt ").unwrap() + 8
    }

    #[test]
    fn header_sample_rates_outside_the_accepted_range_are_refused_before_resampling() {
        let dir = tempfile::tempdir().unwrap();
        for (rate, name) in [
            (u32::MAX - 4, "huge.wav"),
            (1, "one-hz.wav"),
            (0, "zero.wav"),
        ] {
            let p = wav_with(dir.path(), name, MONO16, 1500);
            let mut b = std::fs::read(&p).unwrap();
            let at = fmt_body(&b) + 4;
            b[at..at + 4].copy_from_slice(&rate.to_le_bytes());
            std::fs::write(&p, &b).unwrap();
            let e = load_16k(&p).unwrap_err().to_string();
            assert!(
                e.contains(name)
                    && (e.contains("outside 4000..=384000 Hz") || e.contains("invalid WAV")),
                "{e}"
            );
        }
        // The edges of the range load.
        for rate in [4_000, 384_000] {
            let p = wav_with(
                dir.path(),
                "edge.wav",
                hound::WavSpec {
                    sample_rate: rate,
                    ..MONO16
                },
                rate as usize / 10,
            );
            assert_eq!(load_16k(&p).unwrap().samples.len(), 1600, "{rate} Hz");
        }
    }

    #[test]
    fn non_finite_float_samples_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (bad, shown) in [(f32::INFINITY, "inf"), (f32::NAN, "NaN")] {
            let p = dir.path().join("float.wav");
            let spec = hound::WavSpec {
                bits_per_sample: 32,
                sample_format: hound::SampleFormat::Float,
                ..MONO16
            };
            let mut w = hound::WavWriter::create(&p, spec).unwrap();
            for i in 0..800 {
                w.write_sample(if i == 321 { bad } else { 0.1 }).unwrap();
            }
            w.finalize().unwrap();
            let e = load_16k(&p).unwrap_err().to_string();
            assert!(
                e.contains("float.wav: sample 321 is") && e.contains(shown),
                "{e}"
            );
        }
    }

    #[test]
    fn clips_over_the_duration_limit_are_refused_from_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = wav_with(dir.path(), "long.wav", MONO16, 16_000 * 3);
        let limits = AudioLimits { max_seconds: 2.0 };
        let e = load_16k_within(&p, &limits).unwrap_err().to_string();
        assert!(
            e.contains("long.wav: the audio is 0:00:03 long, over the limit of 0:00:02"),
            "{e}"
        );
        assert_eq!(
            load_16k_within(&p, &AudioLimits { max_seconds: 3.0 })
                .unwrap()
                .samples
                .len(),
            48_000
        );
        // A data chunk that claims 4 GiB in a small file is caught before allocating for it.
        let mut b = std::fs::read(&p).unwrap();
        let data = b.windows(4).position(|w| w == b"data").unwrap();
        b[data + 4..data + 8].copy_from_slice(&(u32::MAX - 1).to_le_bytes());
        std::fs::write(&p, &b).unwrap();
        let e = load_16k(&p).unwrap_err().to_string();
        assert!(e.contains("long.wav: the audio is 37:16:58 long"), "{e}");
        let no_cap = AudioLimits { max_seconds: 1e9 };
        let e = load_16k_within(&p, &no_cap).unwrap_err().to_string();
        assert!(
            e.contains("long.wav: truncated WAV: the data chunk declares 2147483647 samples"),
            "{e}"
        );
        // 65 535 channels are refused.
        let mut b = std::fs::read(wav_with(dir.path(), "many.wav", MONO16, 100)).unwrap();
        let at = fmt_body(&b) + 2;
        b[at..at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        std::fs::write(dir.path().join("many.wav"), &b).unwrap();
        let e = load_16k(&dir.path().join("many.wav"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("many.wav") && (e.contains("channels") || e.contains("invalid WAV")),
            "{e}"
        );
    }

    fn librispeech_flac() -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("datasets/speech-en/librispeech/2412-153948-0000.flac");
        std::fs::read(p).unwrap()
    }

    /// STREAMINFO sits right after `fLaC` and its 4-byte block header.
    const STREAMINFO: usize = 8;

    fn decode_bytes(name: &str, bytes: Vec<u8>) -> Result<Audio, AudioError> {
        let len = bytes.len() as u64;
        decode_16k(
            Path::new(name),
            std::io::Cursor::new(bytes),
            len,
            &AudioLimits::default(),
        )
    }

    #[test]
    fn flac_md5_and_length_are_checked() {
        let good = librispeech_flac();
        assert!(decode_bytes("good.flac", good.clone()).is_ok());

        let mut wrong_md5 = good.clone();
        wrong_md5[STREAMINFO + 18] ^= 0x55;
        let e = decode_bytes("md5.flac", wrong_md5).unwrap_err().to_string();
        assert!(
            e.contains("md5.flac: corrupt FLAC: the decoded audio does not match STREAMINFO's MD5"),
            "{e}"
        );

        // Total samples (36 bits from bit 108 of STREAMINFO) set to 0, "unknown", then the file cut:
        // the MD5 still catches it.
        let mut unknown_len = good.clone();
        unknown_len[STREAMINFO + 13] &= 0xF0;
        unknown_len[STREAMINFO + 14..STREAMINFO + 18].fill(0);
        assert!(decode_bytes("unknown.flac", unknown_len.clone()).is_ok());
        let cut = unknown_len[..unknown_len.len() * 2 / 3].to_vec();
        let e = decode_bytes("cut.flac", cut).unwrap_err().to_string();
        assert!(e.contains("cut.flac: corrupt FLAC"), "{e}");

        // Neither length nor MD5: refused, since a cut-off stream could not be told from a whole one.
        let mut neither = unknown_len;
        neither[STREAMINFO + 18..STREAMINFO + 34].fill(0);
        let e = decode_bytes("neither.flac", neither)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("neither.flac: FLAC declares neither its length nor an MD5"),
            "{e}"
        );

        // A declared length over the limit is refused before decoding.
        let limits = AudioLimits { max_seconds: 1.0 };
        let len = good.len() as u64;
        let e = decode_16k(
            Path::new("long.flac"),
            std::io::Cursor::new(good),
            len,
            &limits,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("long.flac: the audio is"), "{e}");
    }

    #[test]
    fn a_panic_inside_a_decoder_becomes_the_files_error() {
        let e = without_panics(Path::new("hostile.mkv"), || {
            panic!("called `Result::unwrap()` on an `Err` value")
        })
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("hostile.mkv: malformed audio file"), "{e}");
        // Outside a decoder the hook is the previous one again, and decoding still works.
        assert!(!IN_DECODER.with(|d| d.get()));
        assert!(decode_bytes("good.flac", librispeech_flac()).is_ok());
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
            .contains("notes.wav: not an audio file quantbench reads"));

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
