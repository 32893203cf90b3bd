//! A comparison of two reports as markdown (also what `compare` prints).

use crate::results::compare::{Change, Comparison};

fn ci(c: [f64; 2]) -> String {
    format!("[{:.3}, {:.3}]", c[0], c[1])
}

/// A verdict cell: changes in bold, so they stand out in a long table.
fn verdict_cell(c: Change) -> String {
    match c {
        Change::NoChange => "no change".to_string(),
        v => format!("**{}**", v.text()),
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn comparison_markdown(c: &Comparison, old: &str, new: &str, noise: f64) -> String {
    let mut out = format!(
        "# quantbench compare\n\nOld: `{old}`  \nNew: `{new}`  \nA series changed only when the two medians' 95 % CIs do not overlap and they differ by more than {:.1} %.\n\n",
        noise * 100.0
    );
    if !c.environment.is_empty() {
        out.push_str(
            "**Warning: the environments differ** — latency may differ for this alone:\n\n",
        );
        for e in &c.environment {
            out.push_str(&format!("- {e}\n"));
        }
        out.push('\n');
    }
    out.push_str("## Latency\n\n| model | variant | series | old median ms [95 % CI] | new median ms [95 % CI] | change | verdict |\n|---|---|---|---:|---:|---:|---|\n");
    for r in &c.rows {
        for s in &r.series {
            let verdict = verdict_cell(s.verdict);
            out.push_str(&format!(
                "| {} | {} | {} | {:.3} {} | {:.3} {} | {:+.1} % | {verdict} |\n",
                r.model,
                r.variant,
                s.series,
                s.old_median_ms,
                ci(s.old_ci95_ms),
                s.new_median_ms,
                ci(s.new_ci95_ms),
                s.change * 100.0
            ));
        }
    }
    out.push_str("\n## Speedup against FP32\n\nMeasured against FP32 in the same rounds of each run, so drift of the machine between the runs cancels.\n\n| model | variant | series | old [95 % CI] | new [95 % CI] | verdict |\n|---|---|---|---:|---:|---|\n");
    for r in &c.rows {
        for s in &r.speedups {
            let verdict = verdict_cell(s.verdict);
            out.push_str(&format!(
                "| {} | {} | {} | {:.2}× [{:.2}, {:.2}] | {:.2}× [{:.2}, {:.2}] | {verdict} |\n",
                r.model,
                r.variant,
                s.series,
                s.old,
                s.old_ci95[0],
                s.old_ci95[1],
                s.new,
                s.new_ci95[0],
                s.new_ci95[1]
            ));
        }
    }
    out.push_str("\n## Accuracy and size\n\n| model | variant | metric | old | new | change (points, + = worse) | size old → new |\n|---|---|---|---:|---:|---:|---|\n");
    for r in &c.rows {
        let (metric, old, new, change) = match &r.accuracy {
            Some(a) => (
                a.metric.clone(),
                format!("{:.2} %", a.old * 100.0),
                format!("{:.2} %", a.new * 100.0),
                if a.drop_points.abs() < 1e-9 {
                    "identical".to_string()
                } else {
                    format!("{:+.2}", a.drop_points)
                },
            ),
            None => ("—".into(), "n/a".into(), "n/a".into(), "—".into()),
        };
        let size = if r.old_bytes == r.new_bytes {
            format!("{} (same)", mb(r.new_bytes))
        } else {
            format!("{} → {}", mb(r.old_bytes), mb(r.new_bytes))
        };
        out.push_str(&format!(
            "| {} | {} | {metric} | {old} | {new} | {change} | {size} |\n",
            r.model, r.variant
        ));
    }
    let flips: Vec<String> = c
        .rows
        .iter()
        .flat_map(|r| {
            r.flips.iter().map(move |f| {
                let word = |p: bool| if p { "pass" } else { "FAIL" };
                format!(
                    "- {} {} `{}`: {} → {}",
                    r.model,
                    r.variant,
                    f.check,
                    word(f.old_pass),
                    word(f.new_pass)
                )
            })
        })
        .collect();
    out.push_str("\n## Verdicts that flipped\n\n");
    if flips.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str(&(flips.join("\n") + "\n"));
    }
    for (title, list) in [
        ("Rows only in the old report", &c.only_old),
        ("Rows only in the new report", &c.only_new),
    ] {
        if !list.is_empty() {
            out.push_str(&format!("\n## {title}\n\n"));
            for k in list {
                out.push_str(&format!("- {k}\n"));
            }
        }
    }
    out.push_str("\n## Differences outside latency\n\n");
    if c.other_differences.is_empty() {
        out.push_str("None: the same config, models, data, parameters and outputs.\n");
    } else {
        for d in &c.other_differences {
            out.push_str(&format!("- {d}\n"));
        }
    }
    if !c.refused.is_empty() {
        out.push_str("\n## Not compared (different model or data; --force compares them)\n\n");
        for r in &c.refused {
            out.push_str(&format!("- {} {}: {}\n", r.model, r.variant, r.reason));
        }
    }
    out
}
