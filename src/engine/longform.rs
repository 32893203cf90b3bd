//! A Whisper entry's long recordings: composed in memory from the bundled clips, each transcribed whole
//! into timed segments per arm (the `long_form` series), then scored: WER over whole recordings, the
//! real-time factor, the joins a segment starts at, and the segment times against the baseline arm's.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::variants::Opened;
use crate::data::audio::AudioLimits;
use crate::data::recordings::{self, Recording};
use crate::measure::normalizer::normalize;
use crate::measure::segments::{joins_met, timing_agreement, Span};
use crate::measure::stats::median;
use crate::measure::wer::{word_counts, EditCounts};
use crate::models::whisper::{LongFormOptions, LongTranscription, Pipeline, Segment};
use crate::results::longform::{LongForm, LongFormRecording, LongFormVsFp32, TimedText};

pub(super) struct LongFormSet {
    file: PathBuf,
    sha256: String,
    recordings: Vec<Recording>,
    passes: usize,
    options: LongFormOptions,
    /// Per arm, per recording: compute seconds of each measured transcription.
    times: Vec<Vec<Vec<f64>>>,
    /// Per arm, per recording: the latest transcription (greedy decoding is deterministic).
    latest: Vec<Vec<Option<LongTranscription>>>,
}

pub(super) fn timed(s: &Segment) -> TimedText {
    TimedText {
        start: s.start,
        end: s.end,
        text: s.text.trim().to_string(),
    }
}

fn spans(t: &LongTranscription) -> Vec<Span> {
    t.segments.iter().map(|s| (s.start, s.end)).collect()
}

impl LongFormSet {
    pub(super) fn open(
        file: &Path,
        passes: usize,
        arms: usize,
        limits: &AudioLimits,
    ) -> Result<Self> {
        let specs = recordings::load_spec(file)?;
        let clips: Vec<&Path> = specs
            .iter()
            .flat_map(|s| s.clips.iter().map(|(p, _, _)| p.as_path()))
            .collect();
        let sha256 = crate::data::dataset_sha256(file, clips)?;
        let recordings = specs
            .iter()
            .map(|s| recordings::compose(s, limits))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{}: composing a recording", file.display()))?;
        let n = recordings.len();
        Ok(LongFormSet {
            file: file.to_path_buf(),
            sha256,
            recordings,
            passes,
            options: LongFormOptions::default(),
            times: vec![vec![Vec::new(); n]; arms],
            latest: vec![vec![None; n]; arms],
        })
    }

    pub(super) fn recording_count(&self) -> usize {
        self.recordings.len()
    }

    pub(super) fn rounds(&self) -> usize {
        self.recordings.len() * self.passes
    }

    /// Forgets the warm-up's times: what follows is measured.
    pub(super) fn measuring(&mut self) {
        for arm in &mut self.times {
            arm.iter_mut().for_each(Vec::clear);
        }
    }

    fn transcribe(
        &self,
        pipeline: &mut Pipeline,
        i: usize,
        on_segment: &mut dyn FnMut(&str, &Segment),
    ) -> Result<LongTranscription> {
        let r = &self.recordings[i];
        pipeline
            .transcribe_long(&r.samples, &self.options, &mut |s| on_segment(&r.name, s))
            .with_context(|| format!("{}: recording {}", self.file.display(), r.name))
    }

    /// Transcribes the recording of `round` on `arm`: (milliseconds, tokens).
    pub(super) fn sample(
        &mut self,
        pipeline: &mut Pipeline,
        arm: usize,
        round: usize,
        on_segment: &mut dyn FnMut(&str, &Segment),
    ) -> Result<(f64, u32)> {
        let i = round % self.recordings.len();
        let t = self.transcribe(pipeline, i, on_segment)?;
        let seconds = t.total.as_secs_f64();
        let tokens = t.segments.iter().map(|s| s.tokens.len() as u32).sum();
        self.times[arm][i].push(seconds);
        self.latest[arm][i] = Some(t);
        Ok((seconds * 1e3, tokens))
    }

    /// Every recording of `arm` transcribed (those the series did not reach are transcribed now).
    fn ensure(&mut self, pipeline: &mut Pipeline, arm: usize) -> Result<()> {
        for i in 0..self.recordings.len() {
            if self.latest[arm][i].is_none() {
                let t = self.transcribe(pipeline, i, &mut |_, _| {})?;
                self.latest[arm][i] = Some(t);
            }
        }
        Ok(())
    }

    /// `arm`'s long-form outcome, against `baseline`'s when it is another arm.
    pub(super) fn outcome(
        &mut self,
        pipelines: &mut [Opened<Pipeline>],
        arm: usize,
        baseline: Option<usize>,
    ) -> Result<LongForm> {
        self.ensure(&mut pipelines[arm].pipeline, arm)?;
        let base = baseline.filter(|&b| b != arm);
        if let Some(b) = base {
            self.ensure(&mut pipelines[b].pipeline, b)?;
        }
        let mine = self.summary(arm);
        let Some(b) = base else {
            return Ok(mine);
        };
        let theirs = self.summary(b);
        let (mut a, mut h) = (Vec::new(), Vec::new());
        let mut same_text = 0;
        for (x, y) in self.latest[b].iter().zip(&self.latest[arm]) {
            let (x, y) = (x.as_ref().expect("ensured"), y.as_ref().expect("ensured"));
            let (sx, sy) = (spans(x), spans(y));
            same_text += crate::measure::segments::align(&sx, &sy)
                .iter()
                .filter(|&&(i, j)| normalize(&x.segments[i].text) == normalize(&y.segments[j].text))
                .count();
            a.push(sx);
            h.push(sy);
        }
        let timing = {
            // Recordings are aligned one by one, then the pairs pooled.
            let mut pooled = crate::measure::segments::TimingAgreement::default();
            let (mut starts, mut ends) = (0.0, 0.0);
            for (sx, sy) in a.iter().zip(&h) {
                let t = timing_agreement(sx, sy);
                pooled.baseline_segments += t.baseline_segments;
                pooled.segments += t.segments;
                pooled.aligned += t.aligned;
                starts += t.mean_abs_start_s.unwrap_or(0.0) * t.aligned as f64;
                ends += t.mean_abs_end_s.unwrap_or(0.0) * t.aligned as f64;
                pooled.max_abs_start_s = max_opt(pooled.max_abs_start_s, t.max_abs_start_s);
                pooled.max_abs_end_s = max_opt(pooled.max_abs_end_s, t.max_abs_end_s);
            }
            if pooled.aligned > 0 {
                pooled.mean_abs_start_s = Some(starts / pooled.aligned as f64);
                pooled.mean_abs_end_s = Some(ends / pooled.aligned as f64);
            }
            pooled
        };
        Ok(LongForm {
            vs_fp32: Some(LongFormVsFp32 {
                real_time_factor_speedup: theirs.compute_seconds / mine.compute_seconds,
                wer_drop_points: (mine.wer - theirs.wer) * 100.0,
                timing,
                same_text_segments: same_text,
            }),
            ..mine
        })
    }

    fn summary(&self, arm: usize) -> LongForm {
        let mut recordings = Vec::new();
        let mut words = EditCounts::default();
        let (mut audio, mut compute) = (0.0, 0.0);
        let (mut met, mut joins) = (0, 0);
        for (i, r) in self.recordings.iter().enumerate() {
            let t = self.latest[arm][i].as_ref().expect("ensured");
            let runs = &self.times[arm][i];
            let seconds = median(runs).unwrap_or(t.total.as_secs_f64());
            let hypothesis = t.text();
            let counts = word_counts(&normalize(&r.text()), &normalize(&hypothesis));
            words.add(&counts);
            let starts: Vec<f64> = t.segments.iter().map(|s| s.start).collect();
            let (m, j) = joins_met(&r.joins(), &starts);
            met += m;
            joins += j;
            audio += r.duration_s();
            compute += seconds;
            recordings.push(LongFormRecording {
                name: r.name.clone(),
                audio_seconds: r.duration_s(),
                compute_seconds: seconds,
                runs: runs.len(),
                real_time_factor: r.duration_s() / seconds,
                windows: t.windows,
                word_errors: counts.errors(),
                reference_words: counts.reference_len,
                reference: r.text(),
                hypothesis,
                segments: t.segments.iter().map(timed).collect(),
                joins_met: m,
                joins: j,
            });
        }
        LongForm {
            recordings_file: self.file.display().to_string(),
            recordings_sha256: self.sha256.clone(),
            recordings,
            wer: words.rate(),
            word_counts: words,
            audio_seconds: audio,
            compute_seconds: compute,
            real_time_factor: audio / compute,
            joins_met: met,
            joins,
            vs_fp32: None,
        }
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
