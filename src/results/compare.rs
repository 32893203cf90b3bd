//! Two reports side by side: rows matched by model and variant, each series' medians with their CIs and a
//! verdict (`faster`, `slower`, `no change`), accuracy and size changes, verdicts that flipped, and the rows
//! only one report has. Plain data; the markdown and the exit code are the command's.

use serde::Serialize;

use super::{ExperimentResult, Row};

/// A latency change is real only when the two medians' 95 % CIs do not overlap and the medians differ by
/// more than this share (criterion's "noise threshold"). 5 %: back-to-back runs of the default experiment
/// on the project's 2-core VMs moved whole models by up to 3.9 % with their CIs apart (machine drift, the
/// same for every arm of a model; the speedups did not move).
pub const DEFAULT_NOISE: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Faster,
    Slower,
    NoChange,
}

impl Change {
    pub fn text(self) -> &'static str {
        match self {
            Change::Faster => "faster",
            Change::Slower => "slower",
            Change::NoChange => "no change",
        }
    }

    /// The verdict of a median moving from `old` to `new` (ms, with their 95 % CIs).
    /// The verdict of a speedup moving from `old` to `new` (with their 95 % CIs): a higher speedup is faster.
    pub fn of_speedup(old: (f64, [f64; 2]), new: (f64, [f64; 2]), noise: f64) -> Change {
        let inverse = |(x, ci): (f64, [f64; 2])| (1.0 / x, [1.0 / ci[1], 1.0 / ci[0]]);
        Change::of(inverse(old), inverse(new), noise)
    }

    pub fn of(old: (f64, [f64; 2]), new: (f64, [f64; 2]), noise: f64) -> Change {
        let overlap = old.1[0] <= new.1[1] && new.1[0] <= old.1[1];
        let share = (new.0 - old.0) / old.0.max(f64::MIN_POSITIVE);
        if overlap || share.abs() <= noise {
            Change::NoChange
        } else if share < 0.0 {
            Change::Faster
        } else {
            Change::Slower
        }
    }
}

/// One series of a matched row.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesChange {
    pub series: String,
    pub old_median_ms: f64,
    pub old_ci95_ms: [f64; 2],
    pub new_median_ms: f64,
    pub new_ci95_ms: [f64; 2],
    /// (new − old) / old.
    pub change: f64,
    pub verdict: Change,
}

/// One series' speedup against FP32 in both reports: measured against FP32 in the same rounds, so machine
/// drift between the runs cancels.
#[derive(Debug, Clone, Serialize)]
pub struct SpeedupChange {
    pub series: String,
    pub old: f64,
    pub old_ci95: [f64; 2],
    pub new: f64,
    pub new_ci95: [f64; 2],
    pub verdict: Change,
}

/// A verdict whose outcome differs between the reports.
#[derive(Debug, Clone, Serialize)]
pub struct Flip {
    pub check: String,
    pub old_pass: bool,
    pub new_pass: bool,
}

/// The accuracy of a matched row in both reports.
#[derive(Debug, Clone, Serialize)]
pub struct AccuracyChange {
    pub metric: String,
    pub old: f64,
    pub new: f64,
    /// How many points worse the new report is (positive = accuracy fell).
    pub drop_points: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowChange {
    pub model: String,
    pub variant: String,
    pub series: Vec<SeriesChange>,
    pub speedups: Vec<SpeedupChange>,
    pub accuracy: Option<AccuracyChange>,
    pub old_bytes: u64,
    pub new_bytes: u64,
    pub flips: Vec<Flip>,
}

/// A row present in both reports that was not compared, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub model: String,
    pub variant: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Environment differences (CPU, threads, versions): latency may differ for these alone.
    pub environment: Vec<String>,
    pub rows: Vec<RowChange>,
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
    pub refused: Vec<Refused>,
    /// Every difference outside latency (accuracy, per-item outputs, hashes, parameters, config, …).
    pub other_differences: Vec<String>,
}

fn key(r: &Row) -> String {
    format!("{} {}", r.model, r.variant)
}

fn environment_differences(old: &ExperimentResult, new: &ExperimentResult) -> Vec<String> {
    let (a, b) = (&old.environment, &new.environment);
    let mut out = Vec::new();
    let mut diff = |what: &str, x: String, y: String| {
        if x != y {
            out.push(format!("{what}: {x} → {y}"));
        }
    };
    diff("CPU", a.cpu_model.clone(), b.cpu_model.clone());
    diff("CPU flags", a.cpu_flags.join(" "), b.cpu_flags.join(" "));
    diff("cores", a.cores.to_string(), b.cores.to_string());
    diff("threads", a.threads.to_string(), b.threads.to_string());
    diff("ONNX Runtime", a.ort_version.clone(), b.ort_version.clone());
    diff(
        "quantbench",
        a.quantbench_version.clone(),
        b.quantbench_version.clone(),
    );
    diff("OS", a.os.clone(), b.os.clone());
    out
}

/// Why two rows of the same model and variant are not the same thing measured twice, if they are not.
fn hash_mismatch(a: &Row, b: &Row) -> Option<String> {
    if a.dataset_sha256 != b.dataset_sha256 {
        return Some(format!(
            "dataset hashes differ ({} {} vs {} {})",
            a.dataset,
            short(&a.dataset_sha256),
            b.dataset,
            short(&b.dataset_sha256)
        ));
    }
    if a.source_sha256 != b.source_sha256 {
        return Some(format!(
            "source model hashes differ ({} vs {})",
            short(&a.source_sha256),
            short(&b.source_sha256)
        ));
    }
    let parts = |r: &Row| -> Vec<(String, String)> {
        r.parts
            .iter()
            .map(|p| (p.part.clone(), p.sha256.clone()))
            .collect()
    };
    (parts(a) != parts(b)).then(|| "model graph hashes differ".to_string())
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn row_change(a: &Row, b: &Row, noise: f64) -> RowChange {
    let series = a
        .series
        .iter()
        .filter_map(|(name, sa)| {
            let sb = b.series.get(name)?;
            let (x, y) = (&sa.stats, &sb.stats);
            Some(SeriesChange {
                series: name.clone(),
                old_median_ms: x.median_ms,
                old_ci95_ms: x.ci95_median_ms,
                new_median_ms: y.median_ms,
                new_ci95_ms: y.ci95_median_ms,
                change: (y.median_ms - x.median_ms) / x.median_ms.max(f64::MIN_POSITIVE),
                verdict: Change::of(
                    (x.median_ms, x.ci95_median_ms),
                    (y.median_ms, y.ci95_median_ms),
                    noise,
                ),
            })
        })
        .collect();
    let speedups = a
        .vs_fp32
        .iter()
        .flat_map(|v| &v.speedup)
        .filter_map(|(name, x)| {
            let y = b.speedup(name)?;
            Some(SpeedupChange {
                series: name.clone(),
                old: x.median,
                old_ci95: x.ci95,
                new: y.median,
                new_ci95: y.ci95,
                verdict: Change::of_speedup((x.median, x.ci95), (y.median, y.ci95), noise),
            })
        })
        .collect();
    let accuracy = match (a.accuracy.value, b.accuracy.value) {
        (Some(x), Some(y)) => Some(AccuracyChange {
            metric: a.accuracy.metric.label().to_string(),
            old: x,
            new: y,
            drop_points: a.accuracy.metric.drop_points(x, y),
        }),
        _ => None,
    };
    let flips = a
        .verdicts
        .iter()
        .filter_map(|va| {
            let vb = b.verdicts.iter().find(|v| v.check == va.check)?;
            (va.pass != vb.pass).then(|| Flip {
                check: va.check.clone(),
                old_pass: va.pass,
                new_pass: vb.pass,
            })
        })
        .collect();
    RowChange {
        model: a.model.clone(),
        variant: a.variant.clone(),
        series,
        speedups,
        accuracy,
        old_bytes: a.bytes(),
        new_bytes: b.bytes(),
        flips,
    }
}

/// Compares `new` against `old`. Rows whose model or dataset hashes differ are refused unless `force`.
pub fn compare(
    old: &ExperimentResult,
    new: &ExperimentResult,
    noise: f64,
    force: bool,
) -> Comparison {
    let mut c = Comparison {
        environment: environment_differences(old, new),
        rows: Vec::new(),
        only_old: Vec::new(),
        only_new: Vec::new(),
        refused: Vec::new(),
        other_differences: super::repro::differences(old, new),
    };
    for a in &old.rows {
        let Some(b) = new.rows.iter().find(|b| key(b) == key(a)) else {
            c.only_old.push(key(a));
            continue;
        };
        match hash_mismatch(a, b) {
            Some(reason) if !force => c.refused.push(Refused {
                model: a.model.clone(),
                variant: a.variant.clone(),
                reason,
            }),
            _ => c.rows.push(row_change(a, b, noise)),
        }
    }
    c.environment.extend(machine_drift(&c.rows, old));
    c.only_new = new
        .rows
        .iter()
        .filter(|b| !old.rows.iter().any(|a| key(a) == key(b)))
        .map(key)
        .collect();
    c
}

/// When most FP32 series moved the same way beyond the noise, the machine's own speed changed between the
/// runs (FP32 is the same model in both): a sentence saying so, with the range of the moves.
fn machine_drift(rows: &[RowChange], old: &ExperimentResult) -> Option<String> {
    let baseline = |r: &RowChange| {
        old.rows
            .iter()
            .any(|o| o.model == r.model && o.variant == r.variant && o.vs_fp32.is_none())
    };
    let moves: Vec<&SeriesChange> = rows
        .iter()
        .filter(|r| baseline(r))
        .flat_map(|r| &r.series)
        .collect();
    let count = |c: Change| moves.iter().filter(|s| s.verdict == c).count();
    let (faster, slower) = (count(Change::Faster), count(Change::Slower));
    let direction = if faster * 2 > moves.len() {
        "faster"
    } else if slower * 2 > moves.len() {
        "slower"
    } else {
        return None;
    };
    let (lo, hi) = moves.iter().fold((f64::MAX, f64::MIN), |(lo, hi), s| {
        (lo.min(s.change), hi.max(s.change))
    });
    Some(format!(
        "the machine itself ran {direction}: {} of {} FP32 series (the same model in both reports) moved beyond the noise, by {:+.1} % to {:+.1} %; read the speedups against FP32, measured in the same rounds",
        faster.max(slower),
        moves.len(),
        lo * 100.0,
        hi * 100.0
    ))
}

impl Comparison {
    /// What `--fail-on regression` fails on: a latency slower beyond the noise, accuracy that fell, a
    /// verdict that went from pass to fail.
    pub fn regressions(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.rows {
            for s in r.speedups.iter().filter(|s| s.verdict == Change::Slower) {
                out.push(format!(
                    "{} {} {} speedup: {:.2}× → {:.2}×",
                    r.model, r.variant, s.series, s.old, s.new
                ));
            }
            for s in r.series.iter().filter(|s| s.verdict == Change::Slower) {
                out.push(format!(
                    "{} {} {}: {:.3} ms → {:.3} ms ({:+.1} %)",
                    r.model,
                    r.variant,
                    s.series,
                    s.old_median_ms,
                    s.new_median_ms,
                    s.change * 100.0
                ));
            }
            if let Some(a) = r.accuracy.as_ref().filter(|a| a.drop_points > 1e-9) {
                out.push(format!(
                    "{} {} {}: fell {:.2} points ({:.2} % → {:.2} %)",
                    r.model,
                    r.variant,
                    a.metric,
                    a.drop_points,
                    a.old * 100.0,
                    a.new * 100.0
                ));
            }
            for f in r.flips.iter().filter(|f| f.old_pass && !f.new_pass) {
                out.push(format!(
                    "{} {} {}: passed, now fails",
                    r.model, r.variant, f.check
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_inside_the_noise_or_the_cis_is_no_change() {
        // CIs apart, 10 % faster.
        assert_eq!(
            Change::of((10.0, [9.9, 10.1]), (9.0, [8.9, 9.1]), 0.02),
            Change::Faster
        );
        assert_eq!(
            Change::of((10.0, [9.9, 10.1]), (11.0, [10.9, 11.1]), 0.02),
            Change::Slower
        );
        // CIs overlap.
        assert_eq!(
            Change::of((10.0, [9.0, 11.0]), (10.5, [10.2, 10.8]), 0.02),
            Change::NoChange
        );
        // CIs apart but 1 % only.
        assert_eq!(
            Change::of((10.0, [9.99, 10.01]), (10.1, [10.09, 10.11]), 0.02),
            Change::NoChange
        );
        // A speedup that fell is slower.
        assert_eq!(
            Change::of_speedup((2.0, [1.9, 2.1]), (1.5, [1.4, 1.6]), 0.02),
            Change::Slower
        );
        assert_eq!(
            Change::of_speedup((2.0, [1.9, 2.1]), (2.02, [1.95, 2.1]), 0.02),
            Change::NoChange
        );
    }
}
