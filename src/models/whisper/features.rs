//! Whisper log-mel features, computed as faster-whisper's FeatureExtractor does (the padding convention the
//! transcripts are checked against): 160 zero samples appended, centred STFT (reflect padding, periodic Hann,
//! n_fft 400, hop 160), power spectrum with the last frame dropped, Slaney mel filters, log10 clamped at
//! 1e-10, floor at max − 8, then (x + 4) / 4. The normalisation maximum is taken over the whole clip.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

pub const SAMPLE_RATE: usize = 16_000;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
/// Frames in one 30 s window.
pub const WINDOW_FRAMES: usize = 3000;

/// Log-mel spectrogram, mel-major: `data[m * frames + t]`.
#[derive(Debug, Clone)]
pub struct LogMel {
    pub n_mels: usize,
    pub frames: usize,
    pub data: Vec<f32>,
}

impl LogMel {
    /// Frames that hold audio (faster-whisper drops the trailing one that only covers padding).
    pub fn content_frames(&self) -> usize {
        self.frames.saturating_sub(1)
    }

    /// Frames [start, start+3000) as a [n_mels, 3000] block, zero-padded past the content.
    pub fn window(&self, start: usize) -> Vec<f32> {
        let end = self.content_frames().min(start + WINDOW_FRAMES);
        let mut out = vec![0.0f32; self.n_mels * WINDOW_FRAMES];
        if start < end {
            for m in 0..self.n_mels {
                let src = &self.data[m * self.frames + start..m * self.frames + end];
                out[m * WINDOW_FRAMES..m * WINDOW_FRAMES + src.len()].copy_from_slice(src);
            }
        }
        out
    }

    /// Start frames of the 30 s windows covering the content.
    pub fn window_starts(&self) -> Vec<usize> {
        let n = self.content_frames().max(1);
        (0..n).step_by(WINDOW_FRAMES).collect()
    }
}

pub struct MelExtractor {
    n_mels: usize,
    /// Filter rows as (first non-zero bin, weights).
    filters: Vec<(usize, Vec<f32>)>,
    window: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl MelExtractor {
    pub fn new(n_mels: usize) -> Self {
        let dense = mel_filters(SAMPLE_RATE as f64, N_FFT, n_mels);
        let bins = N_FFT / 2 + 1;
        let filters = (0..n_mels)
            .map(|m| {
                let row = &dense[m * bins..(m + 1) * bins];
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
                (first, row[first..last.max(first)].to_vec())
            })
            .collect();
        // np.hanning(401)[:-1] cast to float32, as faster-whisper does.
        let window = (0..N_FFT)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32
                    as f64
            })
            .collect();
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
        MelExtractor {
            n_mels,
            filters,
            window,
            fft,
        }
    }

    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Features of 16 kHz mono samples.
    pub fn compute(&self, samples: &[f32]) -> LogMel {
        let pad = N_FFT / 2;
        let padded_len = samples.len() + HOP;
        let total = padded_len + 2 * pad;
        // The clip followed by HOP zeros.
        let at = |i: usize| -> f32 { samples.get(i).copied().unwrap_or(0.0) };
        // numpy's "reflect" (edge sample not repeated), periodic when the pad exceeds the signal.
        let reflect = |j: isize| -> f32 {
            let n = padded_len as isize;
            if n <= 1 {
                return at(0);
            }
            let period = 2 * (n - 1);
            let mut k = j.rem_euclid(period);
            if k >= n {
                k = period - k;
            }
            at(k as usize)
        };
        let signal: Vec<f64> = (0..total)
            .map(|i| reflect(i as isize - pad as isize) as f64)
            .collect();
        let n_frames = 1 + (total - N_FFT) / HOP;
        let frames = n_frames - 1; // the last STFT frame is dropped (stft[..., :-1])
        let bins = N_FFT / 2 + 1;

        let mut power = vec![0f32; bins];
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut mel = vec![0f32; self.n_mels * frames];
        for t in 0..frames {
            let seg = &signal[t * HOP..t * HOP + N_FFT];
            for (dst, (s, w)) in input.iter_mut().zip(seg.iter().zip(&self.window)) {
                *dst = s * w;
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("buffer sizes come from the planner");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                // stft is cast to complex64 before the magnitude is taken
                let (re, im) = (c.re as f32, c.im as f32);
                *p = re * re + im * im;
            }
            for (m, (first, w)) in self.filters.iter().enumerate() {
                let acc: f32 = w.iter().zip(&power[*first..]).map(|(a, b)| a * b).sum();
                mel[m * frames + t] = acc;
            }
        }
        let mut max = f32::NEG_INFINITY;
        for v in mel.iter_mut() {
            *v = v.max(1e-10).log10();
            max = max.max(*v);
        }
        let floor = max - 8.0;
        for v in mel.iter_mut() {
            *v = (v.max(floor) + 4.0) / 4.0;
        }
        LogMel {
            n_mels: self.n_mels,
            frames,
            data: mel,
        }
    }
}

/// Slaney-style mel filterbank (librosa's default, norm="slaney"), computed in f64 then cast to f32.
fn mel_filters(sr: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let fftfreqs: Vec<f64> = (0..bins).map(|i| i as f64 * sr / n_fft as f64).collect();
    let (min_mel, max_mel) = (0.0, 45.245640471924965);
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = (6.4f64).ln() / 27.0;
    let freqs: Vec<f64> = (0..n_mels + 2)
        .map(|i| {
            let mel = min_mel + (max_mel - min_mel) * i as f64 / (n_mels + 1) as f64;
            if mel >= min_log_mel {
                min_log_hz * (logstep * (mel - min_log_mel)).exp()
            } else {
                f_sp * mel
            }
        })
        .collect();
    let mut w = vec![0f32; n_mels * bins];
    for m in 0..n_mels {
        let enorm = 2.0 / (freqs[m + 2] - freqs[m]);
        for (k, &f) in fftfreqs.iter().enumerate() {
            let lower = (f - freqs[m]) / (freqs[m + 1] - freqs[m]);
            let upper = (freqs[m + 2] - f) / (freqs[m + 2] - freqs[m + 1]);
            w[m * bins + k] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_count_follows_faster_whisper() {
        let fe = MelExtractor::new(80);
        for n in [1usize, 159, 160, 161, 16_000, 16_123] {
            let m = fe.compute(&vec![0.1; n]);
            assert_eq!(m.frames, n / HOP + 1, "n={n}");
        }
    }

    #[test]
    fn silence_is_floored_and_windows_are_zero_padded() {
        let fe = MelExtractor::new(80);
        let m = fe.compute(&vec![0.0; 8000]);
        // log10(1e-10) = -10 everywhere → max = -10, (−10 + 4) / 4 = −1.5
        assert!(m.data.iter().all(|&v| (v + 1.5).abs() < 1e-6));
        let w = m.window(0);
        assert_eq!(w.len(), 80 * WINDOW_FRAMES);
        assert_eq!(w[m.content_frames()], 0.0);
        assert!((w[0] + 1.5).abs() < 1e-6);
    }

    #[test]
    fn slaney_filters_are_triangles_of_unit_area_scaled() {
        let f = mel_filters(16_000.0, 400, 80);
        // Each row peaks once and its peak is at most 2/(f[m+2]-f[m]) (≤ 0.03 for the first, narrowest one).
        for m in 0..80 {
            let row = &f[m * 201..(m + 1) * 201];
            assert!(row.iter().all(|&v| v >= 0.0));
            assert!(row.iter().any(|&v| v > 0.0), "row {m} empty");
        }
    }
}
