//! The one-screen summary `report` prints to stdout: every row of every kind, grouped by model.

use std::fmt::Write;

use super::markdown::{accuracy_text, gate};
use crate::results::ExperimentResult;

pub fn summary(r: &ExperimentResult) -> String {
    let mut out = String::new();
    for group in r.groups() {
        let kind = group[0].kind;
        let _ = writeln!(out, "{} ({})", group[0].model, kind.name());
        for row in &group {
            let mut line = format!("  {:<8} {:>8.1} MB", row.variant, row.bytes() as f64 / 1e6);
            for spec in kind.series() {
                let Some(s) = row.series.get(spec.name) else {
                    continue;
                };
                let _ = write!(line, "  {} {:.2} ms", spec.label, s.stats.median_ms);
                if let Some(x) = row.speedup(spec.name) {
                    let _ = write!(line, " ({:.2}×)", x.median);
                }
            }
            let _ = write!(
                line,
                "  {} {}",
                kind.metric().label(),
                accuracy_text(&row.accuracy)
            );
            if let Some(d) = row.vs_fp32.as_ref().and_then(|v| v.accuracy_drop_points) {
                let _ = write!(line, " (drop {d:+.2})");
            }
            if row.vs_fp32.is_some() {
                let _ = write!(line, "  gate {}", gate(&row.verdicts));
            }
            if !row.warnings.is_empty() {
                let _ = write!(line, "  ⚠ {} warning(s)", row.warnings.len());
            }
            let _ = writeln!(out, "{line}");
        }
    }
    out
}
