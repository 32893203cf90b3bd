use std::fmt::Write;

use super::Exporter;
use crate::measure::stats::Ratio;
use crate::results::control::{AccuracyControl, ControlOp};
use crate::results::{Accuracy, ExperimentResult, Kind, Metric, PartSize, Row, Verdict};

pub struct Markdown;

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// "2.04× [1.98, 2.10]".
fn ratio(r: &Ratio) -> String {
    format!("{:.2}× [{:.2}, {:.2}]", r.median, r.ci95[0], r.ci95[1])
}

/// The row's accuracy as its metric prints, or why there is none.
pub fn accuracy_text(a: &Accuracy) -> String {
    match (a.value, &a.not_applicable) {
        (Some(v), _) => pct(v),
        (None, Some(why)) => format!("n/a ({why})"),
        (None, None) => "—".into(),
    }
}

/// ✓ when every threshold passed, ✗ when one failed (with a word, for readers without colour), — when none set.
pub fn gate(verdicts: &[Verdict]) -> &'static str {
    if verdicts.is_empty() {
        "—"
    } else if verdicts.iter().all(|v| v.pass) {
        "✓ pass"
    } else {
        "✗ FAIL"
    }
}

/// The series a group of rows measured, in the kind's order.
fn series_of(rows: &[&Row]) -> Vec<&'static str> {
    rows[0]
        .kind
        .series()
        .iter()
        .map(|s| s.name)
        .filter(|n| rows.iter().any(|r| r.series.contains_key(*n)))
        .collect()
}

/// One line per variant: size, each series' median with its CI and speedup, accuracy, drop, gate.
fn comparison_table(out: &mut String, rows: &[&Row]) {
    let kind = rows[0].kind;
    let metric = kind.metric();
    let series = series_of(rows);
    let _ = writeln!(
        out,
        "## {} ({}): FP32 vs INT8\n",
        rows[0].model,
        kind.name()
    );
    let mut header = "| variant | size | compression |".to_string();
    for s in &series {
        let _ = write!(header, " {s} median ms [95 % CI] | {s} × [95 % CI] |");
    }
    let _ = write!(header, " {} | drop (pts) | gate |", metric.label());
    let cols = header.matches('|').count() - 1;
    let _ = writeln!(out, "{header}\n|{}", "---|".repeat(cols));
    let base_bytes = rows.iter().find(|r| r.vs_fp32.is_none()).map(|r| r.bytes());
    for r in rows {
        let _ = write!(
            out,
            "| {} | {} | {} |",
            r.variant,
            mb(r.bytes()),
            match (r.vs_fp32.as_ref(), base_bytes) {
                (Some(_), Some(b)) => format!(
                    "{:.2}× ({:.0} %)",
                    b as f64 / r.bytes().max(1) as f64,
                    100.0 * r.bytes() as f64 / b.max(1) as f64
                ),
                _ => "1.00×".into(),
            }
        );
        for s in &series {
            match r.series.get(*s) {
                Some(x) => {
                    let st = &x.stats;
                    let _ = write!(
                        out,
                        " {:.2} [{:.2}, {:.2}] |",
                        st.median_ms, st.ci95_median_ms[0], st.ci95_median_ms[1]
                    );
                }
                None => out.push_str(" — |"),
            }
            let sp = if r.vs_fp32.is_none() {
                "base".to_string()
            } else {
                r.speedup(s).map_or("—".into(), |x| ratio(&x))
            };
            let _ = write!(out, " {sp} |");
        }
        let drop = match r.vs_fp32.as_ref() {
            None => "base".to_string(),
            Some(v) => v
                .accuracy_drop_points
                .map_or("n/a".into(), |d| format!("{d:+.2}")),
        };
        let _ = writeln!(
            out,
            " {} | {drop} | {} |",
            accuracy_text(&r.accuracy),
            gate(&r.verdicts)
        );
    }
    out.push_str(
        "\nSpeedup: median over rounds of FP32 time / variant time, each pair from the same round (every \
         round runs each variant once, the order rotated), with a seeded bootstrap 95 % interval. Median CI: \
         the order-statistic interval. Drop: how many points worse the variant's metric is than FP32's.\n",
    );
    let checks: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.verdicts.iter().map(move |v| {
                let mark = if v.pass { "✓ pass" } else { "✗ FAIL" };
                let value = v.value.map_or("not measured".into(), |x| format!("{x:.3}"));
                format!("- {} — {} {}: {value} {mark}", r.variant, v.check, v.limit)
            })
        })
        .collect();
    if !checks.is_empty() {
        let _ = writeln!(out, "\nThresholds:\n\n{}", checks.join("\n"));
    }
    let warnings: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.warnings
                .iter()
                .map(move |w| format!("- ⚠ {} — {w}", r.variant))
        })
        .collect();
    if !warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings:\n\n{}", warnings.join("\n"));
    }
    generation_table(out, rows, &series);
    accuracy_details(out, rows, metric);
    let parts: Vec<(&str, &[PartSize])> = rows
        .iter()
        .map(|r| (r.variant.as_str(), r.parts.as_slice()))
        .collect();
    parts_table(out, &parts);
    quantization_notes(out, rows);
    out.push('\n');
}

/// Equal work: tokens generated per arm and time per token, for the generation series.
fn generation_table(out: &mut String, rows: &[&Row], series: &[&str]) {
    let kind = rows[0].kind;
    let gens: Vec<&str> = series
        .iter()
        .copied()
        .filter(|s| kind.spec(s).is_some_and(|x| x.generation))
        .collect();
    if gens.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n| variant |{}\n|---|{}",
        gens.iter()
            .map(|s| format!(" {s} tokens | {s} ms/token |"))
            .collect::<String>(),
        "---|---|".repeat(gens.len())
    );
    for r in rows {
        let _ = write!(out, "| {} |", r.variant);
        for s in &gens {
            let x = r.series.get(*s);
            let tokens: Option<u64> = x
                .and_then(|x| x.tokens.as_ref())
                .map(|t| t.iter().map(|&v| u64::from(v)).sum());
            let _ = write!(
                out,
                " {} | {} |",
                tokens.map_or("—".into(), |t| t.to_string()),
                x.and_then(|x| x.ms_per_token)
                    .map_or("—".into(), |v| format!("{v:.2}"))
            );
        }
        out.push('\n');
    }
}

fn accuracy_details(out: &mut String, rows: &[&Row], metric: Metric) {
    for r in rows {
        let a = &r.accuracy;
        let Some(v) = a.value else { continue };
        let mut line = format!(
            "\n{} {}: {} {} on {} items of `{}`",
            r.model,
            r.variant,
            metric.label(),
            pct(v),
            a.n.unwrap_or(0),
            r.dataset
        );
        let mut extra: Vec<String> = a
            .by_type
            .iter()
            .map(|(t, x)| format!("{t} {}", pct(*x)))
            .collect();
        extra.extend(a.secondary.iter().map(|(k, x)| format!("{k} {}", pct(*x))));
        if !extra.is_empty() {
            let _ = write!(line, " ({})", extra.join(", "));
        }
        if let Some(vs) = &r.vs_fp32 {
            if let Some(rel) = vs.relative_accuracy {
                let _ = write!(line, "; {:.2} % of FP32's accuracy", rel * 100.0);
            }
        }
        let _ = writeln!(out, "{line}.");
    }
}

/// Per model part: FP32 size, each variant's size and compression rate (FP32 / INT8).
fn parts_table(out: &mut String, rows: &[(&str, &[PartSize])]) {
    let base = rows[0];
    let _ = write!(out, "\n| part | {} |", base.0);
    for r in &rows[1..] {
        let _ = write!(out, " {} | rate |", r.0);
    }
    let _ = writeln!(out, "\n|---|---|{}", "---|---|".repeat(rows.len() - 1));
    for p in base.1 {
        let _ = write!(out, "| {} | {} |", p.part, mb(p.bytes));
        for r in &rows[1..] {
            match r.1.iter().find(|q| q.part == p.part) {
                Some(q) => {
                    let _ = write!(
                        out,
                        " {} | {:.2}× |",
                        mb(q.bytes),
                        p.bytes as f64 / q.bytes.max(1) as f64
                    );
                }
                None => out.push_str(" — | — |"),
            }
        }
        out.push('\n');
    }
}

/// How each INT8 (or fused) variant was made: recipe parameters, calibration, what was quantized and
/// fused, time taken.
fn quantization_notes(out: &mut String, rows: &[&Row]) {
    for r in rows {
        let Some(q) = &r.quantization else { continue };
        let _ = writeln!(
            out,
            "\n**{}** — recipe `{}`, made in {:.1} s{}.",
            r.variant,
            q.recipe.name(),
            q.seconds,
            q.calibration_sha256
                .as_ref()
                .map_or(String::new(), |h| format!(
                    "; calibrated on {} items (set sha256 `{}`)",
                    q.calibration_clips.unwrap_or(0),
                    &h[..16.min(h.len())]
                ))
        );
        if let Some(p) = q.parameters.get("static") {
            let _ = writeln!(out, "Parameters: `{p}`.");
        }
        for p in &q.parts {
            let ops: Vec<String> = p
                .ops
                .iter()
                .filter(|(_, c)| c.quantized > 0)
                .map(|(op, c)| format!("{op} {}/{}", c.quantized, c.total))
                .collect();
            let recipe = p.recipe.map_or(q.recipe.name(), |x| x.name());
            let mut facts = Vec::new();
            if !ops.is_empty() {
                facts.push(ops.join(", "));
            }
            if let Some(s) = &p.smoothing {
                facts.push(format!(
                    "SmoothQuant α {} on {} MatMuls ({} folded into LayerNorm, {} scale nodes)",
                    s.alpha, s.matmuls, s.folded_into_layernorm, s.scale_nodes
                ));
            }
            if let Some(b) = p.bias_corrected {
                facts.push(format!("{b} biases corrected"));
            }
            if let Some(fused) = p.fusions_text() {
                facts.push(format!("fused: {fused}"));
            }
            if !p.left_in_float.is_empty() {
                facts.push(format!("{} left in float", p.left_in_float.len()));
            }
            let line = format!("- `{}` ({recipe}): {}", p.file, facts.join("; "));
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Whole recordings transcribed into timed segments: WER, real-time factor, joins, and INT8's segment
/// times against FP32's.
fn long_form_table(out: &mut String, rows: &[&Row]) {
    let Some(first) = rows.iter().find_map(|r| r.long_form.as_ref()) else {
        return;
    };
    let _ = writeln!(
        out,
        "### Long-form: {} recordings of {:.0} s in all (`{}`)\n",
        first.recordings.len(),
        first.audio_seconds,
        first.recordings_file
    );
    let _ = writeln!(
        out,
        "Each recording transcribed whole (timestamps, previous text as prompt, temperature fallback); compute is the median over the measured passes. Real-time factor = audio seconds per compute second. Joins: a segment starts within [end of the clip before − 0.5 s, start of the next + 0.8 s]. Against FP32: segments aligned in order by overlap.\n"
    );
    out.push_str(
        "| variant | WER | drop (pts) | compute s | real-time factor | × FP32 | segments | joins met | aligned with FP32 | same text | mean abs Δstart | mean abs Δend |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let secs = |x: Option<f64>| x.map_or("—".to_string(), |x| format!("{x:.3} s"));
    for r in rows {
        let Some(l) = &r.long_form else { continue };
        let segments: usize = l.recordings.iter().map(|x| x.segments.len()).sum();
        let (drop, speedup, aligned, same, ds, de) = match &l.vs_fp32 {
            Some(v) => (
                format!("{:+.2}", v.wer_drop_points),
                format!("{:.2}×", v.real_time_factor_speedup),
                format!("{} of {}", v.timing.aligned, v.timing.baseline_segments),
                v.same_text_segments.to_string(),
                secs(v.timing.mean_abs_start_s),
                secs(v.timing.mean_abs_end_s),
            ),
            None => Default::default(),
        };
        let _ = writeln!(
            out,
            "| {} | {} ({} / {} words) | {drop} | {:.2} | {:.1} | {speedup} | {segments} | {} / {} | {aligned} | {same} | {ds} | {de} |",
            r.variant,
            pct(l.wer),
            l.word_counts.errors(),
            l.word_counts.reference_len,
            l.compute_seconds,
            l.real_time_factor,
            l.joins_met,
            l.joins
        );
    }
    out.push('\n');
    for r in rows {
        let Some(l) = &r.long_form else { continue };
        let _ = writeln!(out, "<details><summary>{} segments</summary>\n", r.variant);
        for rec in &l.recordings {
            let _ = writeln!(
                out,
                "**{}** ({:.1} s audio, {:.2} s compute, {} windows, {} of {} words wrong)\n",
                rec.name,
                rec.audio_seconds,
                rec.compute_seconds,
                rec.windows,
                rec.word_errors,
                rec.reference_words
            );
            out.push_str("| start | end | text |\n|---|---|---|\n");
            for s in &rec.segments {
                let _ = writeln!(
                    out,
                    "| {:.2} | {:.2} | {} |",
                    s.start,
                    s.end,
                    s.text.replace('|', "\\|")
                );
            }
            out.push('\n');
        }
        out.push_str("</details>\n\n");
    }
}

fn opt_ms(x: Option<f64>) -> String {
    x.map_or("—".into(), |v| format!("{v:.2}"))
}

/// Every series' full statistics, the worst items, the files.
fn row_section(out: &mut String, r: &Row) {
    let _ = writeln!(out, "### {} {}\n", r.model, r.variant);
    let setup: Vec<String> = r.setup.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        out,
        "Dataset `{}` (sha256 `{}`); weights sha256 `{}`; {}.\n",
        r.dataset,
        &r.dataset_sha256[..16.min(r.dataset_sha256.len())],
        &r.source_sha256[..16.min(r.source_sha256.len())],
        setup.join(", ")
    );
    if !r.failed_items.is_empty() {
        let _ = writeln!(
            out,
            "**{} dataset items failed** and are left out of this row:\n",
            r.failed_items.len()
        );
        for f in &r.failed_items {
            let _ = writeln!(out, "- `{}`: {}", f.item, f.error);
        }
        out.push('\n');
    }
    out.push_str(
        "| series | n | min | median | 95 % CI of median | p90 | p99 | mean | stddev | outliers |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for spec in r.kind.series() {
        let Some(s) = r.series.get(spec.name) else {
            continue;
        };
        let st = &s.stats;
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.2} | [{:.2}, {:.2}] | {:.2} | {} | {:.2} | {:.2} | {} |",
            spec.name,
            st.n,
            st.min_ms,
            st.median_ms,
            st.ci95_median_ms[0],
            st.ci95_median_ms[1],
            st.p90_ms,
            opt_ms(st.p99_ms),
            st.mean_ms,
            st.stddev_ms,
            st.outliers
        );
    }
    out.push_str("\nAll times in ms. p99 only with 100 runs or more; outliers (modified z-score > 3.5) are counted, never dropped.\n");
    if !r.worst.is_empty() {
        let what = match r.kind {
            Kind::Whisper => "Utterances with the most word errors",
            Kind::Blip => "Wrong answers",
        };
        let _ = writeln!(out, "\n{what} (worst first):\n");
        for w in &r.worst {
            let _ = writeln!(out, "- `{}` — {}", w.item, w.cost);
            for (label, words) in &w.lines {
                let text: Vec<String> = words
                    .iter()
                    .map(|(word, differs)| {
                        if *differs {
                            format!("**{word}**")
                        } else {
                            word.clone()
                        }
                    })
                    .collect();
                let _ = writeln!(out, "  - {label}: {}", text.join(" ").replace('|', "\\|"));
            }
        }
    }
    let _ = writeln!(out, "\n| part | size | sha256 |\n|---|---|---|");
    for p in &r.parts {
        let _ = writeln!(
            out,
            "| {} | {} | `{}` |",
            p.part,
            mb(p.bytes),
            &p.sha256[..16.min(p.sha256.len())]
        );
    }
    out.push('\n');
}

/// How accuracy control chose a row's model: the verdict, the trajectory and the ops it left in float.
pub fn control_section(out: &mut String, r: &Row, ac: &AccuracyControl) {
    let _ = writeln!(
        out,
        "### {} {}: quantization with accuracy control
",
        r.model, r.variant
    );
    let unit = ac.budget.drop_type.unit();
    let _ = writeln!(
        out,
        "**{}.** Recipe `{}`, budget {:.2} {unit} of {} on `{}` ({} items, sha256 `{}`), disjoint from this row's dataset; FP32 there: {}. Search: {:.0} s.\n",
        ac.verdict(),
        ac.recipe,
        ac.budget.max_drop,
        ac.metric.label(),
        ac.validation.manifest,
        ac.validation.items,
        &ac.validation.sha256[..ac.validation.sha256.len().min(12)],
        pct(ac.fp32_value),
        ac.seconds
    );
    if let Some(d) = r.vs_fp32.as_ref().and_then(|v| v.accuracy_drop_points) {
        let _ = writeln!(
            out,
            "On this row's own dataset (`{}`) the chosen model's drop is **{d:+.2} points** (the validation set's: {:+.2} {unit}).\n",
            r.dataset, ac.drop
        );
    }
    let _ = writeln!(out, "Ops ranked by {}.\n", ac.method);
    let series: Vec<&String> = ac
        .trajectory
        .iter()
        .flat_map(|s| s.latency_ms.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut head =
        "| step | action | ops in float | validation | drop | within budget |".to_string();
    let mut rule = "|---|---|---|---|---|---|".to_string();
    for s in &series {
        let _ = write!(head, " {s} median ms (speedup) |");
        rule.push_str("---|");
    }
    let _ = writeln!(out, "{head}\n{rule}");
    for s in &ac.trajectory {
        let chosen = if s.step == ac.chosen_step {
            " **(chosen)**"
        } else {
            ""
        };
        let mut line = format!(
            "| {}{chosen} | {} | {} | {} | {:+.2} | {} |",
            s.step,
            s.action.text().replace('|', "\\|"),
            s.reverted,
            pct(s.value),
            s.drop,
            if s.within_budget { "yes" } else { "no" }
        );
        for name in &series {
            let cell = match (s.latency_ms.get(*name), s.speedup.get(*name)) {
                (Some(ms), Some(r)) => format!(" {ms:.2} ({}) |", ratio(r)),
                (Some(ms), None) => format!(" {ms:.2} |"),
                _ => " – |".into(),
            };
            line.push_str(&cell);
        }
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "| rank | op | type | sensitivity | state | why |\n|---|---|---|---|---|---|"
    );
    let shown: Vec<&ControlOp> = ac
        .ops
        .iter()
        .filter(|o| o.reverted || o.why.is_some() || o.rank <= 10)
        .collect();
    for o in &shown {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} |",
            o.rank,
            o.op,
            o.op_type,
            o.sensitivity.map_or("n/a".into(), |v| format!("{v:.2e}")),
            if o.reverted { "float" } else { "INT8" },
            o.why.as_deref().unwrap_or("")
        );
    }
    if shown.len() < ac.ops.len() {
        let _ = writeln!(
            out,
            "\n{} more ops, all INT8 (the whole ranking is in the JSON report).",
            ac.ops.len() - shown.len()
        );
    }
    out.push('\n');
}

impl Exporter for Markdown {
    fn extension(&self) -> &'static str {
        "md"
    }

    fn render(&self, r: &ExperimentResult) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# quantbench report: {}\n", r.name);
        if !r.complete {
            let during = r
                .interrupted
                .as_deref()
                .map(|m| format!(" (stopped during {m})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "**Partial report**: saved before every row had finished{during}.\n"
            );
        }
        let _ = writeln!(
            out,
            "Run {} → {} from `{}`.\n",
            r.started_utc, r.finished_utc, r.config_file
        );
        let e = &r.environment;
        let _ = writeln!(out, "| environment | |\n|---|---|");
        let flags = if e.cpu_flags.is_empty() {
            "none of note".to_string()
        } else {
            e.cpu_flags.join(", ")
        };
        for (k, v) in [
            ("CPU", e.cpu_model.clone()),
            ("CPU flags", flags),
            (
                "cores / threads used",
                format!("{} / {}", e.cores, e.threads),
            ),
            (
                "ONNX Runtime",
                format!("{} ({})", e.ort_version, e.ort_library),
            ),
            (
                "quantbench",
                format!(
                    "{} (git {}{})",
                    e.quantbench_version,
                    e.git_commit,
                    if e.git_dirty {
                        ", uncommitted changes"
                    } else {
                        ""
                    }
                ),
            ),
            ("experiment file sha256", format!("`{}`", r.config_sha256)),
            ("command", format!("`{}`", r.command_line.join(" "))),
            ("OS", e.os.clone()),
            ("measure", r.measure.to_string()),
        ] {
            let _ = writeln!(out, "| {k} | {v} |");
        }
        out.push('\n');
        if !r.settings_changed.is_empty() {
            let _ = writeln!(
                out,
                "Measurement settings changed in the TUI (against `{}`): {}.\n",
                r.config_file,
                r.settings_changed.join("; ")
            );
        }
        for group in r.groups() {
            comparison_table(&mut out, &group);
            long_form_table(&mut out, &group);
            for row in &group {
                if let Some(ac) = &row.accuracy_control {
                    control_section(&mut out, row, ac);
                }
                row_section(&mut out, row);
            }
        }
        out
    }
}
