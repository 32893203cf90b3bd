//! Statistics of repeated measurements: the summary every latency series gets, the confidence interval of
//! its median, outliers, and speedups from interleaved pairs.
//!
//! Percentiles follow numpy's default definition (`method="linear"`): for sorted values `a` and `q` in
//! [0, 1], `h = (n − 1)·q` and the value is `a[⌊h⌋] + (h − ⌊h⌋)·(a[⌊h⌋+1] − a[⌊h⌋])`. The median is the
//! 50th percentile. The standard deviation is the sample one (ddof = 1; 0 for a single run).
//!
//! The median's 95 % interval is the distribution-free order-statistic interval: `[x₍ₗ₎, x₍ₙ₋ₗ₊₁₎]` with
//! the largest `l` such that `P(Binomial(n, ½) ≤ l − 1) ≤ 2.5 %` (coverage ≥ 95 % whatever the
//! distribution); below 6 runs no such `l` exists and the interval is `[min, max]`. Outliers are runs
//! whose modified z-score `0.6745·(x − median) / MAD` exceeds 3.5 in magnitude (Iglewicz and Hoaglin; with
//! MAD = 0, the mean absolute deviation × 1.2533 stands in). They are counted and flagged, never dropped.
//! Speedups are ratios of interleaved pairs, summarised by their median with a seeded percentile-bootstrap
//! 95 % interval.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};

use crate::rng::XorShift64;

/// Runs of a series (milliseconds) and their summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub min_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    /// Only with 100 runs or more.
    pub p99_ms: Option<f64>,
    pub stddev_ms: f64,
    pub ci95_median_ms: [f64; 2],
    pub outliers: usize,
    /// Indices (run order) of the runs flagged as outliers.
    #[serde(default)]
    pub outlier_runs: Vec<usize>,
    /// Every run, in run order.
    pub runs_ms: Vec<f64>,
}

/// numpy's `percentile(a, 100·q)` (linear) of values already sorted ascending; `sorted` is non-empty.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    match sorted.get(lo + 1) {
        Some(next) => sorted[lo] + (h - lo as f64) * (next - sorted[lo]),
        None => sorted[lo],
    }
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The median of `values` (numpy's), `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| percentile_sorted(&sorted(values), 0.5))
}

/// 1-based rank `l` of the order-statistic 95 % interval of the median, or `None` below 6 values.
fn median_ci_rank(n: usize) -> Option<usize> {
    let binomial = Binomial::new(0.5, n as u64).ok()?;
    // P(B ≤ l − 1) ≤ 0.025, largest such l.
    let mut l = 0;
    while l < n / 2 && binomial.cdf(l as u64) <= 0.025 {
        l += 1;
    }
    (l >= 1).then_some(l)
}

/// Indices of the runs whose modified z-score exceeds 3.5.
fn outliers(values: &[f64], median: f64) -> Vec<usize> {
    let deviations: Vec<f64> = values.iter().map(|x| (x - median).abs()).collect();
    let mad = percentile_sorted(&sorted(&deviations), 0.5);
    let scale = if mad > 0.0 {
        mad / 0.6745
    } else {
        1.253_314 * deviations.iter().sum::<f64>() / values.len() as f64
    };
    if scale <= 0.0 {
        return Vec::new();
    }
    deviations
        .iter()
        .enumerate()
        .filter(|(_, d)| **d / scale > 3.5)
        .map(|(i, _)| i)
        .collect()
}

impl Stats {
    /// The summary of `runs_ms` (in run order); `None` when there are no runs.
    pub fn of(runs_ms: &[f64]) -> Option<Stats> {
        if runs_ms.is_empty() {
            return None;
        }
        let s = sorted(runs_ms);
        let n = s.len();
        let mean = s.iter().sum::<f64>() / n as f64;
        let stddev = if n > 1 {
            (s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let median = percentile_sorted(&s, 0.5);
        let ci = match median_ci_rank(n) {
            Some(l) => [s[l - 1], s[n - l]],
            None => [s[0], s[n - 1]],
        };
        let flagged = outliers(runs_ms, median);
        Some(Stats {
            n,
            min_ms: s[0],
            max_ms: s[n - 1],
            mean_ms: mean,
            median_ms: median,
            p90_ms: percentile_sorted(&s, 0.9),
            p99_ms: (n >= 100).then(|| percentile_sorted(&s, 0.99)),
            stddev_ms: stddev,
            ci95_median_ms: ci,
            outliers: flagged.len(),
            outlier_runs: flagged,
            runs_ms: runs_ms.to_vec(),
        })
    }

    /// Half the CI's width as a share of the median.
    pub fn ci_share(&self) -> f64 {
        (self.ci95_median_ms[1] - self.ci95_median_ms[0]) / 2.0 / self.median_ms.abs().max(1e-12)
    }

    /// Runs that would likely bring the CI's half-width within `max_share` of the median (the width
    /// shrinks as 1/√n), or `None` when it already is.
    pub fn runs_needed(&self, max_share: f64) -> Option<usize> {
        let share = self.ci_share();
        (share > max_share).then(|| {
            let factor = (share / max_share).powi(2);
            ((self.n.max(6) as f64 * factor).ceil() as usize).max(self.n + 1)
        })
    }
}

/// A ratio summarised: the median and its 95 % interval.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Ratio {
    pub median: f64,
    pub ci95: [f64; 2],
}

/// Resamples of the bootstrap.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// The bootstrap's seed: a report is reproducible from its runs.
pub const BOOTSTRAP_SEED: u64 = 0x5EED;

/// The speedup of `variant` over `baseline` from pairs run in the same round: ratio `baseline[i] /
/// variant[i]` per pair, median and percentile-bootstrap 95 % interval (`resamples`, `seed`). Pairs beyond
/// the shorter series are ignored; `None` without a pair.
pub fn paired_speedup(
    baseline: &[f64],
    variant: &[f64],
    resamples: usize,
    seed: u64,
) -> Option<Ratio> {
    let ratios: Vec<f64> = baseline.iter().zip(variant).map(|(b, v)| b / v).collect();
    let median = median(&ratios)?;
    let mut rng = XorShift64::new(seed);
    let mut medians = Vec::with_capacity(resamples);
    let mut sample = vec![0.0; ratios.len()];
    for _ in 0..resamples {
        for x in sample.iter_mut() {
            *x = ratios[rng.below(ratios.len())];
        }
        sample.sort_by(f64::total_cmp);
        medians.push(percentile_sorted(&sample, 0.5));
    }
    medians.sort_by(f64::total_cmp);
    let ci = if medians.is_empty() {
        [median, median]
    } else {
        [
            percentile_sorted(&medians, 0.025),
            percentile_sorted(&medians, 0.975),
        ]
    };
    Some(Ratio { median, ci95: ci })
}

/// Counts of runs in `bins` equal bins between the minimum and the maximum.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Histogram {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<usize>,
}

impl Histogram {
    pub fn of(values: &[f64], bins: usize) -> Option<Histogram> {
        let bins = bins.max(1);
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !(lo.is_finite() && hi.is_finite()) {
            return None;
        }
        let mut counts = vec![0; bins];
        for &x in values {
            let t = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
            counts[((t * bins as f64) as usize).min(bins - 1)] += 1;
        }
        Some(Histogram { lo, hi, counts })
    }

    /// The bin `x` falls in.
    pub fn bin_of(&self, x: f64) -> usize {
        let bins = self.counts.len();
        let t = if self.hi > self.lo {
            (x - self.lo) / (self.hi - self.lo)
        } else {
            0.0
        };
        ((t.max(0.0) * bins as f64) as usize).min(bins - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [f64; 11] = [12.0, 3.5, 7.25, 9.0, 1.0, 4.75, 15.5, 6.0, 8.125, 2.0, 11.0];

    #[test]
    fn percentiles_match_numpy_linear() {
        // numpy 2: np.percentile(A, [0, 10, 50, 90, 99, 100]) = 1.0, 2.0, 7.25, 12.0, 15.15, 15.5
        let s = sorted(&A);
        let got: Vec<f64> = [0.0, 0.1, 0.5, 0.9, 0.99, 1.0]
            .iter()
            .map(|&q| percentile_sorted(&s, q))
            .collect();
        let want = [1.0, 2.0, 7.25, 12.0, 15.150000000000002, 15.5];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        // b = arange(1, 101) ** 1.5: percentile 90 and 99, median.
        let b: Vec<f64> = (1..=100).map(|i| (i as f64).powf(1.5)).collect();
        let st = Stats::of(&b).unwrap();
        assert!((st.p90_ms - 855.2419387498584).abs() < 1e-9);
        assert!((st.p99_ms.unwrap() - 985.1871871081983).abs() < 1e-9);
        assert!((st.median_ms - 358.88312022447957).abs() < 1e-9);
    }

    #[test]
    fn summary_matches_hand_computed_values() {
        let s = Stats::of(&A).unwrap();
        assert_eq!(
            (s.n, s.min_ms, s.max_ms, s.median_ms),
            (11, 1.0, 15.5, 7.25)
        );
        // numpy: A.mean() = 7.284090909090909, A.std(ddof=1) = 4.438500207379637
        assert!((s.mean_ms - 7.284090909090909).abs() < 1e-12);
        assert!((s.stddev_ms - 4.438500207379637).abs() < 1e-12);
        assert_eq!(s.p99_ms, None, "p99 needs 100 runs");
        // n = 11: P(B ≤ 1) = 12/2048 ≤ 2.5 % < P(B ≤ 2) = 67/2048, so l = 2: [x(2), x(10)] = [2, 12].
        assert_eq!(s.ci95_median_ms, [2.0, 12.0]);
        assert_eq!(s.runs_ms, A.to_vec(), "runs stay in run order");
        let one = Stats::of(&[7.0]).unwrap();
        assert_eq!((one.stddev_ms, one.ci95_median_ms), (0.0, [7.0, 7.0]));
        assert!(Stats::of(&[]).is_none());
        // Fewer than 6 runs: no 95 % order-statistic interval exists; min..max.
        assert_eq!(
            Stats::of(&[3.0, 1.0, 2.0]).unwrap().ci95_median_ms,
            [1.0, 3.0]
        );
    }

    #[test]
    fn outliers_are_flagged_by_modified_z_and_kept() {
        // median 10, |dev| = 0,1,1,0,2,40 → MAD = 1; z(50) = 0.6745·40 = 27 > 3.5; z(12) = 1.35.
        let runs = [10.0, 11.0, 9.0, 10.0, 12.0, 50.0];
        let s = Stats::of(&runs).unwrap();
        assert_eq!((s.outliers, s.outlier_runs.clone()), (1, vec![5]));
        assert_eq!(s.n, 6);
        assert_eq!(s.max_ms, 50.0, "never dropped");
        // MAD 0 (most runs equal): the mean absolute deviation stands in.
        let s = Stats::of(&[5.0, 5.0, 5.0, 5.0, 5.0, 9.0]).unwrap();
        assert_eq!(s.outlier_runs, vec![5]);
        assert_eq!(Stats::of(&[4.0; 8]).unwrap().outliers, 0);
    }

    #[test]
    fn runs_needed_scales_with_the_square_of_the_excess() {
        let s = Stats::of(&A).unwrap();
        // half-width (12 − 2)/2 = 5 of median 7.25 = 69 %: (0.69/0.02)² · 11 runs.
        let share = 5.0 / 7.25;
        assert!((s.ci_share() - share).abs() < 1e-12);
        let want = (11.0 * (share / 0.02f64).powi(2)).ceil() as usize;
        assert_eq!(s.runs_needed(0.02), Some(want));
        assert_eq!(s.runs_needed(0.9), None);
    }

    /// Lognormal with median e^μ: exp(μ + σ·z) with z standard normal (Box–Muller).
    fn lognormal(rng: &mut XorShift64, mu: f64, sigma: f64) -> f64 {
        let (u, v) = (rng.uniform(), rng.uniform());
        let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        (mu + sigma * z).exp()
    }

    #[test]
    fn the_median_interval_covers_the_true_median_95_percent_of_the_time() {
        let mut rng = XorShift64::new(7);
        let (trials, n, true_median) = (2000, 40, 100f64);
        let covered = (0..trials)
            .filter(|_| {
                let runs: Vec<f64> = (0..n)
                    .map(|_| lognormal(&mut rng, true_median.ln(), 0.3))
                    .collect();
                let [lo, hi] = Stats::of(&runs).unwrap().ci95_median_ms;
                lo <= true_median && true_median <= hi
            })
            .count() as f64
            / trials as f64;
        // Exact coverage for n = 40 is 1 − 2·P(B ≤ 13) = 96.2 %; binomial noise over 2000 trials ±0.9 %.
        assert!((0.945..=0.98).contains(&covered), "coverage {covered}");
    }

    #[test]
    fn the_speedup_interval_covers_the_true_ratio_about_95_percent_of_the_time() {
        let mut rng = XorShift64::new(11);
        let (trials, n) = (400, 60);
        let true_ratio = 2.0f64; // baseline median 100, variant median 50, independent lognormal noise
        let covered = (0..trials)
            .filter(|t| {
                let base: Vec<f64> = (0..n)
                    .map(|_| lognormal(&mut rng, 100f64.ln(), 0.2))
                    .collect();
                let var: Vec<f64> = (0..n)
                    .map(|_| lognormal(&mut rng, 50f64.ln(), 0.2))
                    .collect();
                let r = paired_speedup(&base, &var, 1000, *t as u64).unwrap();
                r.ci95[0] <= true_ratio && true_ratio <= r.ci95[1]
            })
            .count() as f64
            / trials as f64;
        assert!((0.90..=0.99).contains(&covered), "coverage {covered}");
    }

    #[test]
    fn paired_speedup_is_the_median_ratio_of_pairs() {
        // ratios 2, 4, 1 → median 2; deterministic for a seed.
        let r = paired_speedup(&[10.0, 20.0, 5.0], &[5.0, 5.0, 5.0], 200, 1).unwrap();
        assert_eq!(r.median, 2.0);
        assert!(r.ci95[0] >= 1.0 && r.ci95[1] <= 4.0 && r.ci95[0] <= r.ci95[1]);
        assert_eq!(
            r,
            paired_speedup(&[10.0, 20.0, 5.0], &[5.0, 5.0, 5.0], 200, 1).unwrap()
        );
        assert!(paired_speedup(&[], &[1.0], 10, 0).is_none());
    }

    #[test]
    fn histogram_bins_between_the_extremes() {
        let h = Histogram::of(&[1.0, 2.0, 2.5, 4.0, 5.0], 4).unwrap();
        assert_eq!(h.counts, vec![1, 2, 0, 2]);
        assert_eq!(h.bin_of(5.0), 3);
        assert_eq!(Histogram::of(&[3.0, 3.0], 3).unwrap().counts, vec![2, 0, 0]);
        assert!(Histogram::of(&[], 3).is_none());
    }
}
