//! Release thresholds applied to a row: one implementation for every kind. A limit whose value could not
//! be measured fails (a gate that cannot be checked does not pass).

use crate::config::Thresholds;
use crate::results::{Verdict, VsFp32};

/// Every limit that is set, against a variant's comparison with FP32.
pub fn verdicts(t: &Thresholds, vs: &VsFp32) -> Vec<Verdict> {
    let mut out = Vec::new();
    let mut check = |check: String, limit: f64, value: Option<f64>, at_least: bool| {
        let pass = value.is_some_and(|v| if at_least { v >= limit } else { v <= limit });
        out.push(Verdict {
            check,
            limit,
            value,
            pass,
        });
    };
    if let Some(limit) = t.max_accuracy_drop_points {
        check(
            "max_accuracy_drop_points".into(),
            limit,
            vs.accuracy_drop_points,
            false,
        );
    }
    if let Some(limit) = t.min_relative_accuracy {
        check(
            "min_relative_accuracy".into(),
            limit,
            vs.relative_accuracy,
            true,
        );
    }
    for (series, &limit) in &t.min_speedup {
        let value = vs.speedup.get(series).map(|r| r.median);
        check(format!("min_speedup.{series}"), limit, value, true);
    }
    out
}

/// Thresholds naming a series this entry does not measure (e.g. `caption` without a caption manifest).
pub fn unmeasured(t: &Thresholds, series: &[&str]) -> Vec<String> {
    t.min_speedup
        .keys()
        .filter(|s| !series.contains(&s.as_str()))
        .map(|s| {
            format!(
                "thresholds.min_speedup.{s}: this entry measures no `{s}` series (it measures {})",
                series.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::stats::Ratio;

    fn vs(drop: Option<f64>, relative: Option<f64>, encoder: f64) -> VsFp32 {
        VsFp32 {
            speedup: [(
                "encoder".to_string(),
                Ratio {
                    median: encoder,
                    ci95: [encoder - 0.1, encoder + 0.1],
                },
            )]
            .into(),
            accuracy_drop_points: drop,
            relative_accuracy: relative,
            size_ratio: 0.25,
        }
    }

    #[test]
    fn limits_pass_and_fail_by_their_direction() {
        let t = Thresholds {
            max_accuracy_drop_points: Some(0.5),
            min_relative_accuracy: Some(0.99),
            min_speedup: [
                ("encoder".to_string(), 2.0),
                ("decoder_step".to_string(), 2.5),
            ]
            .into(),
            ..Default::default()
        };
        let v = verdicts(&t, &vs(Some(0.6), Some(0.9936), 2.1));
        let got: Vec<(&str, bool)> = v.iter().map(|v| (v.check.as_str(), v.pass)).collect();
        assert_eq!(
            got,
            [
                ("max_accuracy_drop_points", false),
                ("min_relative_accuracy", true),
                ("min_speedup.decoder_step", false), // not measured: fails
                ("min_speedup.encoder", true),
            ]
        );
        assert_eq!(v[2].value, None);
        assert!(verdicts(&Thresholds::default(), &vs(None, None, 1.0)).is_empty());
        // Accuracy not applicable: the accuracy gate cannot pass.
        let t = Thresholds {
            max_accuracy_drop_points: Some(1.0),
            ..Default::default()
        };
        assert!(!verdicts(&t, &vs(None, None, 1.0))[0].pass);
    }

    #[test]
    fn a_series_the_entry_does_not_measure_is_named() {
        let t = Thresholds {
            min_speedup: [("caption".to_string(), 2.0)].into(),
            ..Default::default()
        };
        let e = unmeasured(&t, &["vision", "vqa"]);
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("min_speedup.caption") && e[0].contains("vision, vqa"));
    }
}
