//! Activation statistics gathered while the float model runs on calibration data, and the range estimators
//! that turn them into uint8 quantization parameters.
//!
//! Each observed tensor keeps its extremes, one histogram of magnitudes per sign (whose range doubles by
//! merging neighbouring bins, so the result does not depend on how the data was batched beyond the order it
//! arrived in), and per channel (last axis) the largest magnitude and the mean: SmoothQuant needs the
//! first, bias correction the second.

use serde::{Deserialize, Serialize};

const BINS: usize = 2048;

#[derive(Debug, Clone, PartialEq)]
pub struct TensorStats {
    pub min: f32,
    pub max: f32,
    pub count: u64,
    pos: Histogram,
    neg: Histogram,
    pub channel_absmax: Vec<f32>,
    channel_sum: Vec<f64>,
    channel_rows: u64,
}

/// Counts of magnitudes in `BINS` equal bins over [0, range].
#[derive(Debug, Clone, PartialEq)]
struct Histogram {
    range: f32,
    bins: Vec<u64>,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            range: 0.0,
            bins: vec![0; BINS],
        }
    }

    fn grow_to(&mut self, m: f32) {
        if self.range == 0.0 {
            // A power of two, so later doublings land on the same edges whatever the first value was.
            self.range = 2f32.powi(m.log2().ceil() as i32).max(f32::MIN_POSITIVE);
            return;
        }
        while m > self.range {
            for i in 0..BINS / 2 {
                self.bins[i] = self.bins[2 * i] + self.bins[2 * i + 1];
            }
            self.bins[BINS / 2..].fill(0);
            self.range *= 2.0;
        }
    }

    fn add(&mut self, m: f32) {
        let i = ((m / self.range) * BINS as f32) as usize;
        self.bins[i.min(BINS - 1)] += 1;
    }

    /// Adds `other`'s counts. Ranges are powers of two that only ever double, so both are brought to the
    /// larger range by the same exact pairwise merges the arrival of a larger value would make.
    fn merge(&mut self, other: &Histogram) {
        if other.range == 0.0 {
            return;
        }
        let mut other = other.clone();
        if self.range == 0.0 {
            *self = other;
            return;
        }
        let range = self.range.max(other.range);
        self.grow_to(range);
        other.grow_to(range);
        for (a, b) in self.bins.iter_mut().zip(&other.bins) {
            *a += b;
        }
    }

    fn width(&self) -> f32 {
        self.range / BINS as f32
    }

    /// Magnitude above which `tail` of the counts lie (a bin's upper edge).
    fn upper_tail(&self, tail: u64) -> f32 {
        let mut above = 0u64;
        for i in (0..BINS).rev() {
            above += self.bins[i];
            if above > tail {
                return (i + 1) as f32 * self.width();
            }
        }
        0.0
    }
}

impl TensorStats {
    pub fn new(channels: usize) -> Self {
        TensorStats {
            min: 0.0,
            max: 0.0,
            count: 0,
            pos: Histogram::new(),
            neg: Histogram::new(),
            channel_absmax: vec![0.0; channels],
            channel_sum: vec![0.0; channels],
            channel_rows: 0,
        }
    }

    pub fn channels(&self) -> usize {
        self.channel_absmax.len()
    }

    /// Adds a tensor's values, laid out with `channels()` values per row. Non-finite values are refused.
    pub fn observe(&mut self, data: &[f32]) -> Result<(), String> {
        let c = self.channels();
        if c == 0 || !data.len().is_multiple_of(c) {
            return Err(format!(
                "{} values do not split into rows of {c} channels",
                data.len()
            ));
        }
        if let Some(v) = data.iter().find(|v| !v.is_finite()) {
            return Err(format!("non-finite value {v}"));
        }
        let (lo, hi) = data
            .iter()
            .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        if hi > 0.0 {
            self.pos.grow_to(hi);
        }
        if lo < 0.0 {
            self.neg.grow_to(-lo);
        }
        for row in data.chunks_exact(c) {
            for ((v, m), s) in row
                .iter()
                .zip(self.channel_absmax.iter_mut())
                .zip(self.channel_sum.iter_mut())
            {
                *m = m.max(v.abs());
                *s += *v as f64;
                if *v > 0.0 {
                    self.pos.add(*v);
                } else if *v < 0.0 {
                    self.neg.add(-*v);
                }
            }
        }
        self.count += data.len() as u64;
        self.channel_rows += (data.len() / c) as u64;
        Ok(())
    }

    /// Adds what `other` observed (the same tensor, other data), as if its values had come after these.
    pub fn merge(&mut self, other: &TensorStats) -> Result<(), String> {
        if other.channels() != self.channels() {
            return Err(format!(
                "{} channels merged into {}",
                other.channels(),
                self.channels()
            ));
        }
        if other.count == 0 {
            return Ok(());
        }
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.pos.merge(&other.pos);
        self.neg.merge(&other.neg);
        for (m, o) in self.channel_absmax.iter_mut().zip(&other.channel_absmax) {
            *m = m.max(*o);
        }
        for (s, o) in self.channel_sum.iter_mut().zip(&other.channel_sum) {
            *s += o;
        }
        self.count += other.count;
        self.channel_rows += other.channel_rows;
        Ok(())
    }

    pub fn channel_mean(&self) -> Vec<f32> {
        let n = self.channel_rows.max(1) as f64;
        self.channel_sum.iter().map(|s| (s / n) as f32).collect()
    }

    /// The clipping range [lo, hi] (always containing 0) chosen by `estimator`.
    pub fn range(&self, estimator: Estimator) -> (f32, f32) {
        match estimator {
            Estimator::MinMax => (self.min, self.max),
            Estimator::Percentile(p) => {
                let tail = ((1.0 - p / 100.0) * self.count as f64).floor() as u64;
                (
                    -self.neg.upper_tail(tail).min(-self.min),
                    self.pos.upper_tail(tail).min(self.max),
                )
            }
            Estimator::Mse => self.mse_range(),
        }
    }

    /// Expected squared error of uint8 quantization with range [lo, hi], from the histograms (values taken at
    /// bin centres): clipped values contribute their distance to the edge, the others a uniform rounding
    /// error of step²/12.
    pub fn quantization_mse(&self, lo: f32, hi: f32) -> f64 {
        let step = ((hi - lo) / 255.0) as f64;
        let round = step * step / 12.0;
        let mut err = 0.0; // zeros are represented exactly
        for (h, edge) in [(&self.pos, hi as f64), (&self.neg, -lo as f64)] {
            let w = h.width() as f64;
            for (i, &n) in h.bins.iter().enumerate() {
                if n == 0 {
                    continue;
                }
                let centre = (i as f64 + 0.5) * w;
                err += n as f64
                    * if centre > edge {
                        (centre - edge).powi(2)
                    } else {
                        round
                    };
            }
        }
        err / self.count.max(1) as f64
    }

    /// The range minimizing `quantization_mse` over a grid of shrinkings of each side of [min, max].
    fn mse_range(&self) -> (f32, f32) {
        const STEPS: usize = 40;
        let factor = |i: usize| 1.0 - 0.7 * i as f32 / STEPS as f32;
        let mut best = (f64::INFINITY, self.min, self.max);
        for i in 0..=STEPS {
            for j in 0..=STEPS {
                let (lo, hi) = (self.min * factor(i), self.max * factor(j));
                let e = self.quantization_mse(lo, hi);
                if e < best.0 {
                    best = (e, lo, hi);
                }
            }
        }
        (best.1, best.2)
    }
}

/// How an activation's clipping range is chosen from its statistics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Estimator {
    /// The observed extremes.
    MinMax,
    /// Cut both tails at this percentile of all values (e.g. 99.99).
    Percentile(f64),
    /// The range with the smallest expected quantization error (clipping + rounding).
    Mse,
}

impl Estimator {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "minmax" | "min-max" => Ok(Estimator::MinMax),
            "mse" => Ok(Estimator::Mse),
            _ => match s.strip_prefix("percentile") {
                Some("") => Ok(Estimator::Percentile(99.99)),
                Some(p) => p
                    .trim_start_matches([':', '='])
                    .parse::<f64>()
                    .ok()
                    .filter(|p| *p > 50.0 && *p <= 100.0)
                    .map(Estimator::Percentile)
                    .ok_or_else(|| format!("percentile must be in (50, 100], got `{p}`")),
                None => Err(format!(
                    "unknown range estimator `{s}` (known: minmax, percentile[:P], mse)"
                )),
            },
        }
    }

    pub fn label(self) -> String {
        match self {
            Estimator::MinMax => "minmax".into(),
            Estimator::Percentile(p) => format!("percentile:{p}"),
            Estimator::Mse => "mse".into(),
        }
    }
}

/// uint8 scale and zero point for the range [lo, hi], widened to contain 0 (QuantizeLinear semantics).
pub fn u8_params(lo: f32, hi: f32) -> (f32, u8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = (hi - lo) / 255.0;
    if scale <= 0.0 || !scale.is_finite() {
        return (1.0, 0);
    }
    let zp = (-lo / scale).round_ties_even().clamp(0.0, 255.0) as u8;
    (scale, zp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: &[f32], channels: usize) -> TensorStats {
        let mut s = TensorStats::new(channels);
        s.observe(values).unwrap();
        s
    }

    #[test]
    fn merged_shards_give_the_statistics_of_one_pass() {
        // Values of growing magnitude (so the histograms' ranges double on the way), none a power of two.
        let mut rng = crate::rng::XorShift64::new(3);
        let chunks: Vec<Vec<f32>> = (0..6)
            .map(|c| {
                (0..4 * 64)
                    .map(|_| {
                        let u = rng.below(1 << 20) as f32 / (1 << 20) as f32 - 0.45;
                        u * 3f32.powi(c) + 1e-3
                    })
                    .collect()
            })
            .collect();
        let mut serial = TensorStats::new(4);
        let mut shards = [TensorStats::new(4), TensorStats::new(4)];
        for (i, c) in chunks.iter().enumerate() {
            serial.observe(c).unwrap();
            shards[i % 2].observe(c).unwrap();
        }
        let [mut merged, other] = shards;
        merged.merge(&other).unwrap();
        assert_eq!(
            (merged.min, merged.max, merged.count),
            (serial.min, serial.max, serial.count)
        );
        assert_eq!(merged.pos, serial.pos);
        assert_eq!(merged.neg, serial.neg);
        assert_eq!(merged.channel_absmax, serial.channel_absmax);
        for (a, b) in merged.channel_mean().iter().zip(serial.channel_mean()) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0));
        }
        assert_eq!(merged.range(Estimator::Mse), serial.range(Estimator::Mse));
        // An empty shard changes nothing; a shard of another width is refused.
        let before = merged.clone();
        merged.merge(&TensorStats::new(4)).unwrap();
        assert_eq!(merged, before);
        assert!(merged.merge(&TensorStats::new(3)).is_err());
    }

    #[test]
    fn extremes_channels_and_means() {
        let s = stats(&[1.0, -2.0, 3.0, 0.5, 0.0, -4.0], 3);
        assert_eq!((s.min, s.max, s.count), (-4.0, 3.0, 6));
        assert_eq!(s.channel_absmax, vec![1.0, 2.0, 4.0]);
        assert_eq!(s.channel_mean(), vec![0.75, -1.0, -0.5]);
        assert_eq!(s.range(Estimator::MinMax), (-4.0, 3.0));
    }

    #[test]
    fn histogram_growth_keeps_every_count() {
        let mut s = TensorStats::new(1);
        s.observe(&[0.1, 0.2]).unwrap();
        s.observe(&[100.0, -0.3]).unwrap();
        s.observe(&[1000.0]).unwrap();
        assert_eq!(s.pos.bins.iter().sum::<u64>(), 4);
        assert_eq!(s.neg.bins.iter().sum::<u64>(), 1);
        assert!(s.pos.range >= 1000.0 && s.pos.range.log2().fract() == 0.0);
    }

    #[test]
    fn percentile_cuts_outliers_only() {
        // 10,000 values evenly over [-1, 1] and one outlier at 50: the 99.99th percentile drops the outlier.
        let mut v: Vec<f32> = (0..10_000).map(|i| i as f32 / 5_000.0 - 1.0).collect();
        v.push(50.0);
        let s = stats(&v, 1);
        let (lo, hi) = s.range(Estimator::Percentile(99.99));
        assert!((-1.01..=-0.99).contains(&lo), "{lo}");
        assert!((0.99..=1.01).contains(&hi), "{hi}");
        assert_eq!(s.range(Estimator::Percentile(100.0)).1, 50.0);
    }

    #[test]
    fn mse_clips_a_far_outlier_and_beats_minmax() {
        let mut v: Vec<f32> = (0..10_000).map(|i| i as f32 / 5_000.0 - 1.0).collect();
        v.push(50.0);
        let s = stats(&v, 1);
        let (lo, hi) = s.range(Estimator::Mse);
        assert!(hi < 50.0);
        assert!(s.quantization_mse(lo, hi) < s.quantization_mse(s.min, s.max));
    }

    #[test]
    fn u8_parameters_hand_worked() {
        // [-1, 2]: scale 3/255, zero point round(1 / (3/255)) = 85 (as DynamicQuantizeLinear).
        let (s, zp) = u8_params(-1.0, 2.0);
        assert!((s - 3.0 / 255.0).abs() < 1e-9);
        assert_eq!(zp, 85);
        // A range that excludes 0 is widened to include it.
        assert_eq!(u8_params(1.0, 2.55).1, 0);
        assert_eq!(u8_params(0.0, 0.0), (1.0, 0));
    }

    #[test]
    fn estimator_names() {
        assert_eq!(
            Estimator::parse("percentile:99.9"),
            Ok(Estimator::Percentile(99.9))
        );
        assert_eq!(
            Estimator::parse("percentile"),
            Ok(Estimator::Percentile(99.99))
        );
        assert!(Estimator::parse("percentile:20").is_err());
        assert!(Estimator::parse("kl").is_err());
        assert_eq!(Estimator::parse("mse"), Ok(Estimator::Mse));
    }

    #[test]
    fn bad_shapes_and_values_are_refused() {
        let mut s = TensorStats::new(3);
        assert!(s.observe(&[1.0, 2.0]).is_err());
        assert!(s.observe(&[1.0, f32::NAN, 0.0]).is_err());
    }
}
