//! The one measuring loop, for every workload: per series a warm-up, then rounds that run every arm once
//! with the order rotated each round (so drift of a shared machine hits every arm alike), cancel checks
//! between rounds, progress events; optionally more rounds until every CI is narrow enough. Then each arm's
//! accuracy, and the rows: statistics, speedups from same-round pairs, verdicts and warnings.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;

use super::verdicts::{unmeasured, verdicts};
use super::workload::{Evaluated, Sample, Workload};
use super::{Cancel, Event, Stage, Task};
use crate::config::{MeasureConfig, Thresholds};
use crate::measure::stats::{
    paired_speedup, Histogram, Ratio, Stats, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED,
};
use crate::results::{Row, Series, VsFp32};

/// Histogram bins every series gets.
const HISTOGRAM_BINS: usize = 24;

/// The arm order of round `round`: arm `round mod arms` first.
pub fn rotation(arms: usize, round: usize) -> Vec<usize> {
    (0..arms).map(|k| (round + k) % arms.max(1)).collect()
}

fn task(w: &dyn Workload) -> Task {
    let variants: Vec<&str> = w.arms().iter().map(|a| a.variant.as_str()).collect();
    Task::new(w.model(), &variants)
}

/// The raw samples of every arm, per series.
type Samples = Vec<BTreeMap<&'static str, Vec<Sample>>>;

/// A finished series of one arm, summarised once: what the faces are told and the rows are built from.
struct Finished {
    series: Series,
    /// Against the baseline's runs of the same rounds (absent for the baseline itself).
    speedup: Option<Ratio>,
}

/// Every arm's finished series.
type Measured = Vec<BTreeMap<&'static str, Finished>>;

fn stats_of(samples: &[Sample]) -> Option<Stats> {
    Stats::of(&samples.iter().map(|s| s.ms).collect::<Vec<_>>())
}

/// Runs of `series` every arm needs for its CI to be within `max_share`, when some arm needs more.
fn runs_needed(samples: &Samples, series: &str, max_share: f64) -> Option<usize> {
    samples
        .iter()
        .filter_map(|s| stats_of(s.get(series)?)?.runs_needed(max_share))
        .max()
}

fn measure(
    w: &mut dyn Workload,
    cfg: &MeasureConfig,
    cancel: &Cancel,
    sink: &mut dyn FnMut(Event),
) -> Result<Measured> {
    let arms = w.arms().len();
    let task = task(w);
    let mut samples: Samples = vec![BTreeMap::new(); arms];
    let mut measured: Measured = (0..arms).map(|_| BTreeMap::new()).collect();
    let started = Instant::now();
    for series in w.series() {
        w.begin(series)?;
        for round in 0..w.warmup(series, cfg.warmup) {
            cancel.check()?;
            for arm in rotation(arms, round) {
                w.sample(arm, series, round, sink)?;
            }
        }
        w.measuring(series);
        let mut target = w.rounds(series).max(1);
        let mut round = 0;
        loop {
            while round < target {
                cancel.check()?;
                for arm in rotation(arms, round) {
                    let s = w.sample(arm, series, round, sink)?;
                    samples[arm].entry(series).or_default().push(s);
                }
                round += 1;
                sink(Event::Progress {
                    task: task.clone(),
                    stage: Stage::Measure(series),
                    done: round,
                    total: target,
                });
                if cfg.adaptive
                    && round > w.rounds(series)
                    && started.elapsed().as_secs_f64() > cfg.max_seconds
                {
                    break;
                }
            }
            if !cfg.adaptive || started.elapsed().as_secs_f64() > cfg.max_seconds {
                break;
            }
            match runs_needed(&samples, series, cfg.max_ci_share) {
                Some(n) => {
                    // At most four times the rounds so far per step, so one noisy start cannot ask for
                    // thousands at once; the time budget bounds the total.
                    target = n.min(round * 4).max(round + 1);
                    sink(Event::Note(format!(
                        "{} {series}: a 95 % CI is wider than ±{:.1} % of the median after {round} rounds; measuring up to {target}",
                        w.model(),
                        cfg.max_ci_share * 100.0
                    )));
                }
                None => break,
            }
        }
        w.end(series);
        for (arm, f) in summarise(w, &samples, series).into_iter().enumerate() {
            let Some(f) = f else { continue };
            sink(Event::Series {
                model: w.model().to_string(),
                variant: w.arms()[arm].variant.clone(),
                name: series,
                series: Box::new(f.series.clone()),
                speedup: f.speedup,
            });
            measured[arm].insert(series, f);
        }
    }
    Ok(measured)
}

fn baseline(w: &dyn Workload) -> Option<usize> {
    w.arms().iter().position(|a| a.baseline)
}

fn speedup_of(samples: &Samples, base: usize, arm: usize, series: &str) -> Option<Ratio> {
    let ms = |a: usize| -> Vec<f64> {
        samples[a]
            .get(series)
            .map(|v| v.iter().map(|s| s.ms).collect())
            .unwrap_or_default()
    };
    paired_speedup(&ms(base), &ms(arm), BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
}

fn series_of(samples: &[Sample], generation: bool) -> Option<Series> {
    let stats = stats_of(samples)?;
    let tokens: Option<Vec<u32>> = generation
        .then(|| {
            samples
                .iter()
                .map(|s| s.tokens)
                .collect::<Option<Vec<u32>>>()
        })
        .flatten();
    let ms_per_token = tokens.as_ref().and_then(|t| {
        let total: u64 = t.iter().map(|&x| u64::from(x)).sum();
        (total > 0).then(|| samples.iter().map(|s| s.ms).sum::<f64>() / total as f64)
    });
    Some(Series {
        histogram: Histogram::of(&stats.runs_ms, HISTOGRAM_BINS),
        stats,
        tokens,
        ms_per_token,
    })
}

/// Each arm's summary of `series` with its speedup against the baseline.
fn summarise(w: &dyn Workload, samples: &Samples, series: &str) -> Vec<Option<Finished>> {
    let generation = w.kind().spec(series).is_some_and(|s| s.generation);
    let base = baseline(w);
    (0..w.arms().len())
        .map(|arm| {
            let series_data = series_of(samples[arm].get(series)?, generation)?;
            Some(Finished {
                series: series_data,
                speedup: base
                    .filter(|&b| b != arm)
                    .and_then(|b| speedup_of(samples, b, arm, series)),
            })
        })
        .collect()
}

/// One arm's finished series by name, each with its speedup against the baseline.
pub type ArmLatencies = BTreeMap<String, (Series, Option<Ratio>)>;

/// Every arm's finished series with its speedup against the baseline, measured as `run` measures them, with
/// no evaluation (accuracy control's trajectory).
pub fn latencies(
    w: &mut dyn Workload,
    cfg: &MeasureConfig,
    cancel: &Cancel,
    sink: &mut dyn FnMut(Event),
) -> Result<Vec<ArmLatencies>> {
    Ok(measure(w, cfg, cancel, sink)?
        .into_iter()
        .map(|m| {
            m.into_iter()
                .map(|(name, f)| (name.to_string(), (f.series, f.speedup)))
                .collect()
        })
        .collect())
}

/// Measures every series of `w`, evaluates every arm and returns the rows (also sent as `RowDone`).
pub fn run(
    w: &mut dyn Workload,
    cfg: &MeasureConfig,
    thresholds: &Thresholds,
    cancel: &Cancel,
    sink: &mut dyn FnMut(Event),
) -> Result<Vec<Row>> {
    if let Some(problem) = unmeasured(thresholds, &w.series()).into_iter().next() {
        anyhow::bail!("{}: {problem}", w.model());
    }
    let measured = measure(w, cfg, cancel, sink)?;
    let mut evaluated: Vec<Evaluated> = Vec::new();
    for arm in 0..w.arms().len() {
        cancel.check()?;
        let (model, variant, metric) = (
            w.model().to_string(),
            w.arms()[arm].variant.clone(),
            w.kind().metric(),
        );
        let task = Task::new(&model, &[&variant]);
        let mut progress = |done, total, so_far| {
            sink(Event::Progress {
                task: task.clone(),
                stage: Stage::Evaluate,
                done,
                total,
            });
            sink(Event::Accuracy {
                model: model.clone(),
                variant: variant.clone(),
                metric,
                done,
                total,
                so_far,
            });
        };
        evaluated.push(w.evaluate(arm, cancel, &mut progress)?);
    }
    let rows = assemble(w, measured, evaluated, cfg, thresholds);
    for r in &rows {
        sink(Event::RowDone(Box::new(r.clone())));
    }
    Ok(rows)
}

fn assemble(
    w: &dyn Workload,
    measured: Measured,
    evaluated: Vec<Evaluated>,
    cfg: &MeasureConfig,
    thresholds: &Thresholds,
) -> Vec<Row> {
    let kind = w.kind();
    let metric = kind.metric();
    let base = baseline(w);
    let (dataset, dataset_sha256) = w.dataset();
    let arms = w.arms();
    let bytes = |a: usize| arms[a].parts.iter().map(|p| p.bytes).sum::<u64>() as f64;
    // Tokens each arm generated per generation series, for the equal-work check.
    let tokens: Vec<BTreeMap<&str, u64>> = measured
        .iter()
        .map(|m| {
            m.iter()
                .filter_map(|(name, f)| {
                    let t = f.series.tokens.as_ref()?;
                    Some((*name, t.iter().map(|&x| u64::from(x)).sum()))
                })
                .collect()
        })
        .collect();
    let mut rows = Vec::new();
    for (arm, ((info, eval), finished)) in arms.iter().zip(evaluated).zip(measured).enumerate() {
        let mut warnings = Vec::new();
        let failed = w.failed_items().len() + eval.failed.len();
        if failed > 0 {
            warnings.push(format!(
                "{failed} dataset items failed and are left out of this row (see failed_items)"
            ));
        }
        let mut series = BTreeMap::new();
        let mut speedup = BTreeMap::new();
        for (name, f) in finished {
            let st = &f.series.stats;
            if let Some(needed) = st.runs_needed(cfg.max_ci_share) {
                warnings.push(format!(
                    "{name}: the median's 95 % CI is ±{:.1} % (more than ±{:.1} %) over {} runs; about {needed} runs would likely suffice",
                    st.ci_share() * 100.0,
                    cfg.max_ci_share * 100.0,
                    st.n
                ));
            }
            if let Some(b) = base.filter(|&b| b != arm) {
                if let (Some(x), Some(y)) = (tokens[b].get(name), tokens[arm].get(name)) {
                    if x != y {
                        warnings.push(format!(
                            "{name}: this variant generated {y} tokens against FP32's {x} in the same runs; compare ms per token"
                        ));
                    }
                }
            }
            if let Some(r) = f.speedup {
                speedup.insert(name.to_string(), r);
            }
            series.insert(name.to_string(), f.series);
        }
        let vs_fp32 = base.filter(|&b| b != arm).map(|b| VsFp32 {
            speedup,
            accuracy_drop_points: None,
            relative_accuracy: None,
            size_ratio: bytes(arm) / bytes(b).max(1.0),
        });
        rows.push(Row {
            model: w.model().to_string(),
            kind,
            variant: info.variant.clone(),
            source_sha256: info.source_sha256.clone(),
            dataset: dataset.clone(),
            dataset_sha256: dataset_sha256.clone(),
            parts: info.parts.clone(),
            files: info.files.clone(),
            quantization: info.quantization.clone(),
            accuracy_control: info.accuracy_control.clone(),
            series,
            accuracy: eval.accuracy,
            vs_fp32,
            verdicts: Vec::new(),
            warnings,
            worst: eval.worst,
            setup: {
                let mut setup = w.setup();
                setup.extend(w.arm_setup(arm));
                setup
            },
            evaluation: eval.evaluation,
            failed_items: {
                let mut failed = w.failed_items();
                failed.extend(eval.failed);
                failed
            },
            long_form: eval.long_form,
        });
    }
    // Accuracy against the baseline row, then the verdicts.
    if let Some(b) = base {
        let base_value = rows[b].accuracy.value;
        for row in rows.iter_mut() {
            let value = row.accuracy.value;
            if let Some(vs) = row.vs_fp32.as_mut() {
                if let (Some(x), Some(y)) = (base_value, value) {
                    vs.accuracy_drop_points = Some(metric.drop_points(x, y));
                    let (ax, ay) = (metric.accuracy(x), metric.accuracy(y));
                    vs.relative_accuracy = (ax > 0.0).then(|| ay / ax);
                }
                row.verdicts = verdicts(thresholds, vs);
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::workload::{ArmInfo, EvalProgress};
    use crate::results::{Accuracy, Kind, PartSize};

    /// Two arms (fp32 at 10 ms, int8 at 5 ms, ±1 ms by round) over Whisper's series, recording every call.
    struct Mock {
        arms: Vec<ArmInfo>,
        calls: Vec<(usize, String, usize)>,
        /// WER per arm.
        wer: Vec<f64>,
        /// Tokens per sample per arm.
        tokens: Vec<u32>,
        /// Flip this switch at the n-th call.
        cancel_at: Option<(usize, Cancel)>,
    }

    fn arm(variant: &str, bytes: u64) -> ArmInfo {
        ArmInfo {
            variant: variant.into(),
            baseline: variant == "fp32",
            source_sha256: "s".into(),
            parts: vec![PartSize {
                part: "encoder_model".into(),
                bytes,
                sha256: "h".into(),
            }],
            files: Vec::new(),
            quantization: None,
            accuracy_control: None,
        }
    }

    impl Mock {
        fn new() -> Mock {
            Mock {
                arms: vec![arm("fp32", 400), arm("static", 100)],
                calls: Vec::new(),
                wer: vec![0.05, 0.06],
                tokens: vec![12, 12],
                cancel_at: None,
            }
        }
    }

    impl Workload for Mock {
        fn kind(&self) -> Kind {
            Kind::Whisper
        }
        fn model(&self) -> &str {
            "mock"
        }
        fn arms(&self) -> &[ArmInfo] {
            &self.arms
        }
        fn series(&self) -> Vec<&'static str> {
            vec!["encoder", "end_to_end"]
        }
        fn rounds(&self, series: &str) -> usize {
            if series == "encoder" {
                8
            } else {
                4
            }
        }
        fn sample(
            &mut self,
            arm: usize,
            series: &str,
            round: usize,
            _: &mut dyn FnMut(Event),
        ) -> Result<Sample> {
            self.calls.push((arm, series.to_string(), round));
            if let Some((n, c)) = &self.cancel_at {
                if self.calls.len() == *n {
                    c.cancel();
                }
            }
            let base = if arm == 0 { 10.0 } else { 5.0 };
            Ok(Sample {
                ms: base + (round % 3) as f64 - 1.0,
                tokens: Some(self.tokens[arm]),
            })
        }
        fn evaluate(
            &mut self,
            arm: usize,
            _: &Cancel,
            progress: EvalProgress,
        ) -> Result<Evaluated> {
            progress(1, 1, Some(self.wer[arm]));
            Ok(Evaluated {
                accuracy: Accuracy {
                    value: Some(self.wer[arm]),
                    n: Some(10),
                    not_applicable: None,
                    ..Accuracy::not_applicable(crate::results::Metric::Wer, "")
                },
                worst: Vec::new(),
                evaluation: None,
                failed: Vec::new(),
                long_form: None,
            })
        }
        fn dataset(&self) -> (String, String) {
            ("d.jsonl".into(), "abc".into())
        }
    }

    fn quiet() -> impl FnMut(Event) {
        |_| {}
    }

    fn cfg() -> MeasureConfig {
        MeasureConfig {
            warmup: 1,
            ..Default::default()
        }
    }

    #[test]
    fn rounds_rotate_the_arm_order_after_a_warm_up() {
        assert_eq!(rotation(3, 0), [0, 1, 2]);
        assert_eq!(rotation(3, 1), [1, 2, 0]);
        assert_eq!(rotation(3, 5), [2, 0, 1]);
        let mut w = Mock::new();
        run(
            &mut w,
            &cfg(),
            &Thresholds::default(),
            &Cancel::default(),
            &mut quiet(),
        )
        .unwrap();
        // 1 warm-up round + 8 encoder rounds, then 1 + 4 end-to-end rounds, every round both arms.
        assert_eq!(w.calls.len(), 2 * (1 + 8 + 1 + 4));
        let encoder: Vec<usize> = w.calls[2..18].iter().map(|c| c.0).collect();
        assert_eq!(encoder, [0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0]);
        assert!(
            w.calls[..2].iter().all(|c| c.1 == "encoder" && c.2 == 0),
            "warm-up first"
        );
    }

    #[test]
    fn rows_pair_same_round_runs_and_compare_with_the_baseline() {
        let mut w = Mock::new();
        let mut events = Vec::new();
        let rows = run(
            &mut w,
            &cfg(),
            &Thresholds::default(),
            &Cancel::default(),
            &mut |e| events.push(e),
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].vs_fp32.is_none(), "FP32 is the baseline");
        let vs = rows[1].vs_fp32.as_ref().unwrap();
        // Pairs (10 − 1 + r%3) / (5 − 1 + r%3): 9/4, 10/5, 11/6, 9/4, … over 8 rounds → median 2.0.
        assert_eq!(vs.speedup["encoder"].median, 2.0);
        assert!(
            (vs.accuracy_drop_points.unwrap() - 1.0).abs() < 1e-9,
            "WER 5 % → 6 %"
        );
        assert!((vs.relative_accuracy.unwrap() - 0.94 / 0.95).abs() < 1e-12);
        assert_eq!(vs.size_ratio, 0.25);
        let e2e = &rows[1].series["end_to_end"];
        assert_eq!(e2e.tokens.as_deref(), Some(&[12, 12, 12, 12][..]));
        assert!(
            rows[0].series["encoder"].tokens.is_none(),
            "not a generation series"
        );
        let done = events
            .iter()
            .filter(|e| matches!(e, Event::RowDone(_)))
            .count();
        let series = events
            .iter()
            .filter(|e| matches!(e, Event::Series { .. }))
            .count();
        assert_eq!((done, series), (2, 4));
    }

    #[test]
    fn a_failing_threshold_is_a_failed_verdict() {
        let mut w = Mock::new();
        let t = Thresholds {
            max_accuracy_drop_points: Some(0.5),
            min_speedup: [("encoder".to_string(), 1.5)].into(),
            ..Default::default()
        };
        let rows = run(&mut w, &cfg(), &t, &Cancel::default(), &mut quiet()).unwrap();
        assert!(rows[0].verdicts.is_empty(), "FP32 is not judged");
        let v: Vec<(&str, bool)> = rows[1]
            .verdicts
            .iter()
            .map(|v| (v.check.as_str(), v.pass))
            .collect();
        assert_eq!(
            v,
            [
                ("max_accuracy_drop_points", false),
                ("min_speedup.encoder", true)
            ]
        );
    }

    #[test]
    fn a_threshold_on_a_series_the_entry_lacks_is_refused_before_measuring() {
        let mut w = Mock::new();
        let t = Thresholds {
            min_speedup: [("decoder_step".to_string(), 2.0)].into(),
            ..Default::default()
        };
        let e = run(&mut w, &cfg(), &t, &Cancel::default(), &mut quiet()).unwrap_err();
        assert!(e.to_string().contains("min_speedup.decoder_step"), "{e}");
        assert!(w.calls.is_empty());
    }

    #[test]
    fn cancel_stops_mid_series_at_the_next_round() {
        let mut w = Mock::new();
        let cancel = Cancel::default();
        w.cancel_at = Some((7, cancel.clone()));
        let e = run(
            &mut w,
            &cfg(),
            &Thresholds::default(),
            &cancel,
            &mut quiet(),
        )
        .unwrap_err();
        assert!(e.is::<crate::engine::Cancelled>());
        assert_eq!(
            w.calls.len(),
            8,
            "the round in progress finishes, no new one starts"
        );
    }

    #[test]
    fn unequal_tokens_and_wide_intervals_are_warned_about() {
        let mut w = Mock::new();
        w.tokens = vec![12, 15];
        let c = MeasureConfig {
            max_ci_share: 0.01,
            ..cfg()
        };
        let rows = run(
            &mut w,
            &c,
            &Thresholds::default(),
            &Cancel::default(),
            &mut quiet(),
        )
        .unwrap();
        let warnings = rows[1].warnings.join("\n");
        assert!(
            warnings.contains("60 tokens against FP32's 48"),
            "{warnings}"
        );
        assert!(warnings.contains("runs would likely suffice"), "{warnings}");
    }

    #[test]
    fn adaptive_rounds_continue_until_the_intervals_are_narrow() {
        let mut w = Mock::new();
        let c = MeasureConfig {
            adaptive: true,
            max_ci_share: 0.15,
            ..cfg()
        };
        let rows = run(
            &mut w,
            &c,
            &Thresholds::default(),
            &Cancel::default(),
            &mut quiet(),
        )
        .unwrap();
        let n = rows[0].series["end_to_end"].stats.n;
        assert!(n > 4, "more rounds than the 4 asked for: {n}");
        for r in &rows {
            for (name, s) in &r.series {
                assert!(s.stats.ci_share() <= 0.15, "{name}: {}", s.stats.ci_share());
            }
        }
    }
}
