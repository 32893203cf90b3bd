//! Summary statistics of repeated measurements (statrs).

use serde::{Deserialize, Serialize};
use statrs::statistics::{Data, Distribution, Max, Median, Min};

/// Milliseconds: median, mean, min, max, sample standard deviation, and how many runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub stddev: f64,
    pub runs: usize,
}

impl Summary {
    pub fn of(samples_ms: &[f64]) -> Option<Summary> {
        if samples_ms.is_empty() {
            return None;
        }
        let data = Data::new(samples_ms.to_vec());
        Some(Summary {
            median: data.median(),
            mean: data.mean().unwrap_or(f64::NAN),
            min: data.min(),
            max: data.max(),
            stddev: if samples_ms.len() > 1 {
                data.std_dev().unwrap_or(0.0)
            } else {
                0.0
            },
            runs: samples_ms.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_matches_hand_computed_values() {
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(
            (s.median, s.mean, s.min, s.max, s.runs),
            (2.5, 2.5, 1.0, 4.0, 4)
        );
        // sample stddev of 1..4 = sqrt(5/3)
        assert!((s.stddev - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(Summary::of(&[7.0]).unwrap().stddev, 0.0);
        assert!(Summary::of(&[]).is_none());
    }
}
