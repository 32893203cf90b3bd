//! How timed segments agree: with the known joins of a composed recording, and with another transcription
//! of the same audio (INT8 against FP32), after aligning the two segment lists in order by overlap.

use serde::{Deserialize, Serialize};

/// A segment's time span in seconds.
pub type Span = (f64, f64);

/// How far one transcription's segment times are from another's, over their aligned segments.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimingAgreement {
    /// Segments of the transcription compared against (FP32's).
    pub baseline_segments: usize,
    pub segments: usize,
    /// Pairs aligned by overlap.
    pub aligned: usize,
    /// Mean absolute difference of aligned segments' starts and ends, in seconds (absent with no pair).
    pub mean_abs_start_s: Option<f64>,
    pub mean_abs_end_s: Option<f64>,
    pub max_abs_start_s: Option<f64>,
    pub max_abs_end_s: Option<f64>,
}

/// Share of `b`'s and `a`'s union the two spans share (0 when they do not overlap).
fn overlap(a: Span, b: Span) -> f64 {
    let inter = (a.1.min(b.1) - a.0.max(b.0)).max(0.0);
    let union = a.1.max(b.1) - a.0.min(b.0);
    if union > 0.0 {
        inter / union
    } else if a == b {
        1.0
    } else {
        0.0
    }
}

/// The in-order pairing of `a`'s and `b`'s segments with the largest total overlap (intersection over
/// union); only overlapping segments pair, each at most once.
pub fn align(a: &[Span], b: &[Span]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    let mut score = vec![vec![0.0f64; m + 1]; n + 1];
    for i in 1..=n {
        for j in 1..=m {
            let o = overlap(a[i - 1], b[j - 1]);
            let pair = if o > 0.0 {
                score[i - 1][j - 1] + o
            } else {
                f64::NEG_INFINITY
            };
            score[i][j] = score[i - 1][j].max(score[i][j - 1]).max(pair);
        }
    }
    let mut pairs = Vec::new();
    let (mut i, mut j) = (n, m);
    while i > 0 && j > 0 {
        let o = overlap(a[i - 1], b[j - 1]);
        if o > 0.0 && score[i][j] == score[i - 1][j - 1] + o {
            pairs.push((i - 1, j - 1));
            i -= 1;
            j -= 1;
        } else if score[i][j] == score[i - 1][j] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    pairs.reverse();
    pairs
}

/// `segments`' times against `baseline`'s over their aligned pairs.
pub fn timing_agreement(baseline: &[Span], segments: &[Span]) -> TimingAgreement {
    let pairs = align(baseline, segments);
    let starts: Vec<f64> = pairs
        .iter()
        .map(|&(i, j)| (baseline[i].0 - segments[j].0).abs())
        .collect();
    let ends: Vec<f64> = pairs
        .iter()
        .map(|&(i, j)| (baseline[i].1 - segments[j].1).abs())
        .collect();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let max = |v: &[f64]| v.iter().copied().reduce(f64::max);
    TimingAgreement {
        baseline_segments: baseline.len(),
        segments: segments.len(),
        aligned: pairs.len(),
        mean_abs_start_s: mean(&starts),
        mean_abs_end_s: mean(&ends),
        max_abs_start_s: max(&starts),
        max_abs_end_s: max(&ends),
    }
}

/// Joins (end of the clip before, start of the clip after) at which some segment starts between the end
/// of the clip before − 0.5 s and the start of the clip after + 0.8 s: (joins met, joins).
pub fn joins_met(joins: &[Span], starts: &[f64]) -> (usize, usize) {
    let met = joins
        .iter()
        .filter(|&&(end, start)| starts.iter().any(|&s| s >= end - 0.5 && s <= start + 0.8))
        .count();
    (met, joins.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_segments_align_one_to_one_with_no_difference() {
        let a = [(0.0, 2.0), (2.0, 5.0), (5.0, 9.5)];
        let t = timing_agreement(&a, &a);
        assert_eq!(t.aligned, 3);
        assert_eq!(t.mean_abs_start_s, Some(0.0));
        assert_eq!(t.max_abs_end_s, Some(0.0));
    }

    #[test]
    fn a_split_segment_pairs_once_and_shifts_are_measured() {
        // The second transcription splits the first segment in two and starts everything 0.2 s later.
        let a = [(0.0, 4.0), (4.0, 8.0)];
        let b = [(0.2, 1.2), (1.2, 4.2), (4.2, 8.2)];
        assert_eq!(align(&a, &b), vec![(0, 1), (1, 2)]);
        let t = timing_agreement(&a, &b);
        assert_eq!((t.baseline_segments, t.segments, t.aligned), (2, 3, 2));
        assert!((t.mean_abs_start_s.unwrap() - 0.7).abs() < 1e-9, "{t:?}");
        assert!((t.mean_abs_end_s.unwrap() - 0.2).abs() < 1e-9, "{t:?}");
    }

    #[test]
    fn segments_that_never_overlap_do_not_pair() {
        let t = timing_agreement(&[(0.0, 1.0)], &[(3.0, 4.0)]);
        assert_eq!(t.aligned, 0);
        assert_eq!(t.mean_abs_start_s, None);
        assert_eq!(timing_agreement(&[], &[]).aligned, 0);
    }

    #[test]
    fn joins_count_only_starts_near_a_join() {
        let joins = [(3.0, 4.0), (8.0, 9.5)];
        assert_eq!(joins_met(&joins, &[]), (0, 2));
        assert_eq!(joins_met(&joins, &[4.0, 9.5]), (2, 2));
        assert_eq!(joins_met(&joins, &[2.5, 10.3]), (2, 2));
        assert_eq!(joins_met(&joins, &[4.81, 7.49]), (0, 2));
    }
}
