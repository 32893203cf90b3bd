use std::fmt::Write;

use super::Exporter;
use crate::measure::stats::Summary;
use crate::results::{BlipModelResult, ExperimentResult, ModelResult, PartSize, Verdict};

pub struct Markdown;

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn stats_row(name: &str, s: &Summary) -> String {
    format!(
        "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |\n",
        s.median, s.mean, s.min, s.max, s.stddev, s.runs
    )
}

/// ✓ when every threshold passed, ✗ when one failed (with a word, for readers without colour), — when none set.
fn gate(verdicts: &[Verdict]) -> &'static str {
    if verdicts.is_empty() {
        "—"
    } else if verdicts.iter().all(|v| v.pass) {
        "✓ pass"
    } else {
        "✗ FAIL"
    }
}

/// One row per variant of the same model and dataset, FP32 first, with speedups from interleaved runs.
fn comparison_table(out: &mut String, rows: &[&ModelResult]) {
    let _ = writeln!(out, "## {}: FP32 vs INT8\n", rows[0].model);
    out.push_str(
        "| variant | size | compression | encoder median ms | × | decoder step median ms | × | \
         end-to-end mean ms | × | WER | drop (pts) | MatMuls quantized | gate |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let bytes: u64 = r.parts.iter().map(|p| p.bytes).sum();
        let l = &r.latency;
        let x = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}×"));
        let c = r.vs_fp32.as_ref();
        let quantized = r.quantization.as_ref().map_or("—".to_string(), |q| {
            let (a, b) = q
                .parts
                .iter()
                .filter_map(|p| p.ops.get("MatMul"))
                .fold((0, 0), |(a, b), c| (a + c.quantized, b + c.total));
            format!("{a}/{b}")
        });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {} | {:.2} | {} | {:.1} | {} | {} | {} | {} | {} |",
            r.variant,
            mb(bytes),
            c.map_or("1.00".to_string(), |c| format!(
                "{:.2} ({:.0} %)",
                1.0 / c.size_ratio,
                c.size_ratio * 100.0
            )),
            l.encoder_ms.median,
            x(c.map(|c| c.encoder_speedup)),
            l.decoder_step_ms.median,
            x(c.map(|c| c.decoder_step_speedup)),
            l.end_to_end_ms.mean,
            x(c.map(|c| c.end_to_end_speedup)),
            pct(r.accuracy.wer),
            c.map_or("—".to_string(), |c| format!("{:+.2}", c.wer_drop_points)),
            quantized,
            gate(&r.verdicts),
        );
    }
    let checks: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.verdicts.iter().map(move |v| {
                let mark = if v.pass { "✓ pass" } else { "✗ FAIL" };
                format!(
                    "- {} — {} {}: {:.3} {mark}",
                    r.variant, v.check, v.limit, v.value
                )
            })
        })
        .collect();
    if !checks.is_empty() {
        let _ = writeln!(out, "\nThresholds:\n\n{}", checks.join("\n"));
    }
    let parts: Vec<(&str, &[PartSize])> = rows
        .iter()
        .map(|r| (r.variant.as_str(), r.parts.as_slice()))
        .collect();
    parts_table(out, &parts);
    quantization_notes(out, rows);
    let _ = writeln!(
        out,
        "\nSpeedup = median over paired runs of FP32 time / variant time; the variants' runs alternate \
         (A B A B …) with the same inputs and {} threads. Drop = WER(variant) − WER(FP32) in points.\n",
        rows[0].latency.threads
    );
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

/// How each INT8 variant was made: recipe parameters, calibration, what was quantized, time taken.
fn quantization_notes(out: &mut String, rows: &[&ModelResult]) {
    for r in rows {
        let Some(q) = &r.quantization else { continue };
        let _ = writeln!(
            out,
            "\n**{}** — made in {:.1} s{}.",
            r.variant,
            q.seconds,
            q.calibration_sha256
                .as_ref()
                .map_or(String::new(), |h| format!(
                    "; calibrated on {} clips (set sha256 `{}`)",
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
            let mut line = format!("- `{}`: {}", p.file, ops.join(", "));
            if let Some(s) = &p.smoothing {
                let _ = write!(
                    line,
                    "; SmoothQuant α {} on {} MatMuls ({} folded into LayerNorm, {} scale nodes)",
                    s.alpha, s.matmuls, s.folded_into_layernorm, s.scale_nodes
                );
            }
            if let Some(b) = p.bias_corrected {
                let _ = write!(line, "; {b} biases corrected");
            }
            if !p.left_in_float.is_empty() {
                let _ = write!(line, "; {} left in float", p.left_in_float.len());
            }
            let _ = writeln!(out, "{line}");
        }
    }
}

fn model_section(out: &mut String, m: &ModelResult) {
    let a = &m.accuracy;
    let l = &m.latency;
    let _ = writeln!(out, "## {} ({})\n", m.model, m.variant);
    let _ = writeln!(
        out,
        "Dataset `{}` ({} utterances, sha256 `{}`); weights sha256 `{}`.\n",
        m.dataset, a.n, m.dataset_sha256, m.source_sha256
    );
    let _ = writeln!(out, "### Accuracy\n");
    let _ = writeln!(
        out,
        "| metric | value | edits (S/D/I) | reference units |\n|---|---|---|---|"
    );
    for (name, rate, c) in [
        ("WER", a.wer, &a.word_counts),
        ("CER", a.cer, &a.char_counts),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {}/{}/{} | {} |",
            pct(rate),
            c.substitutions,
            c.deletions,
            c.insertions,
            c.reference_len
        );
    }
    let _ = writeln!(out, "\nText normalised with Whisper's EnglishTextNormalizer; corpus rates (total edits / total reference units).\n");
    let _ = writeln!(
        out,
        "### Latency (ms, {} threads, {} warm-up runs)\n",
        l.threads, l.warmup
    );
    out.push_str("| measurement | median | mean | min | max | stddev | runs |\n|---|---|---|---|---|---|---|\n");
    out.push_str(&stats_row("encoder call (30 s window)", &l.encoder_ms));
    out.push_str(&stats_row(
        &format!("decoder step (cache {} tokens)", l.decoder_cache_len),
        &l.decoder_step_ms,
    ));
    out.push_str(&stats_row(
        &format!("end-to-end per utterance ({} passes)", l.e2e_passes),
        &l.end_to_end_ms,
    ));
    let _ = writeln!(
        out,
        "\nTime outside ONNX Runtime calls (features, decoding loop, tokenizer): {} of end-to-end.\n",
        pct(l.outside_ort_share)
    );
    let _ = writeln!(
        out,
        "### Model files\n\n| part | size | sha256 |\n|---|---|---|"
    );
    for p in &m.parts {
        let _ = writeln!(
            out,
            "| {} | {} | `{}` |",
            p.part,
            mb(p.bytes),
            &p.sha256[..16]
        );
    }
    let mut worst: Vec<_> = a.items.iter().filter(|i| i.word_errors > 0).collect();
    worst.sort_by(|x, y| {
        let rx = x.word_errors as f64 / x.reference_words.max(1) as f64;
        let ry = y.word_errors as f64 / y.reference_words.max(1) as f64;
        ry.total_cmp(&rx)
    });
    if !worst.is_empty() {
        let _ = writeln!(out, "\n### Utterances with errors (worst first)\n\n| audio | word errors | reference | hypothesis |\n|---|---|---|---|");
        for i in worst.iter().take(10) {
            let _ = writeln!(
                out,
                "| {} | {}/{} | {} | {} |",
                i.audio,
                i.word_errors,
                i.reference_words,
                i.reference.replace('|', "\\|"),
                i.hypothesis.replace('|', "\\|")
            );
        }
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
                format!("{} (git {})", e.quantbench_version, e.git_commit),
            ),
            ("OS", e.os.clone()),
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
        let mut i = 0;
        while i < r.models.len() {
            let group: Vec<&ModelResult> = r.models[i..]
                .iter()
                .take_while(|m| m.model == r.models[i].model && m.dataset == r.models[i].dataset)
                .collect();
            if group.len() > 1 {
                comparison_table(&mut out, &group);
            }
            for m in &group {
                model_section(&mut out, m);
            }
            i += group.len();
        }
        let mut i = 0;
        while i < r.blip.len() {
            let group: Vec<&BlipModelResult> = r.blip[i..]
                .iter()
                .take_while(|m| m.model == r.blip[i].model)
                .collect();
            blip_section(&mut out, &group);
            i += group.len();
        }
        out
    }
}

/// A BLIP's variants: sizes per part, answer and caption latency with speedups, accuracy and its drop.
fn blip_section(out: &mut String, rows: &[&BlipModelResult]) {
    let first = rows[0];
    let _ = writeln!(out, "## {}: FP32 vs INT8 (BLIP)\n", first.model);
    let _ = writeln!(
        out,
        "Latency: median of {} samples from `{}` per variant, interleaved across variants after {} warm-up \
         runs, {} threads; a whole `generate_answer` / `generate_caption` (preprocessing, three graphs, greedy \
         decoding). Speedup: FP32 median / variant median of the paired runs.\n",
        first.vqa_runs_ms.len(),
        first.latency_dataset,
        first.warmup,
        first.threads
    );
    out.push_str(
        "| variant | size | compression | VQA median ms | VQA × | caption median ms | caption × | \
         VQA accuracy | drop (pts) | caption exact match | drop (pts) | gate |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let total = |r: &BlipModelResult| r.parts.iter().map(|p| p.bytes).sum::<u64>();
    for r in rows {
        let speed = |x: Option<f64>| x.map_or("base".to_string(), |v| format!("{v:.2}×"));
        let c = r.vs_fp32.as_ref();
        let points = |x: Option<f64>| match (c, x) {
            (None, _) => "base".to_string(),
            (Some(_), Some(v)) => format!("{v:+.2}"),
            (Some(_), None) => "n/a".to_string(),
        };
        let na = r.accuracy_na.as_deref().unwrap_or("—");
        let _ = writeln!(
            out,
            "| {} | {} | {:.2}× | {:.1} | {} | {:.1} | {} | {} | {} | {} | {} | {} |",
            r.variant,
            mb(total(r)),
            total(first) as f64 / total(r).max(1) as f64,
            r.vqa_latency_ms.median,
            speed(c.map(|c| c.vqa_speedup)),
            r.caption_latency_ms.median,
            speed(c.map(|c| c.caption_speedup)),
            r.vqa.as_ref().map_or(na.to_string(), |v| pct(v.accuracy)),
            points(c.and_then(|c| c.vqa_accuracy_drop_points)),
            r.captions
                .as_ref()
                .map_or(na.to_string(), |v| pct(v.exact_match)),
            points(c.and_then(|c| c.caption_exact_match_drop_points)),
            gate(&r.verdicts)
        );
    }
    let parts: Vec<(&str, &[PartSize])> = rows
        .iter()
        .map(|r| (r.variant.as_str(), r.parts.as_slice()))
        .collect();
    parts_table(out, &parts);
    for r in rows {
        if let Some(v) = &r.vqa {
            let types: Vec<String> = v
                .accuracy_by_type
                .iter()
                .map(|(t, a)| format!("{t} {}", pct(*a)))
                .collect();
            let _ = writeln!(
                out,
                "\n{} {}: VQA accuracy {} on {} questions of `{}` ({}).",
                r.model,
                r.variant,
                pct(v.accuracy),
                v.n,
                v.manifest,
                types.join(", ")
            );
        }
        if let Some(q) = &r.quantization {
            let recipes: Vec<String> = q
                .parts
                .iter()
                .map(|p| {
                    format!(
                        "{}: {}",
                        p.file.trim_end_matches(".onnx"),
                        p.recipe.map_or(q.recipe.name(), |x| x.name())
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "\n{} {}: recipe `{}` ({}), calibration {} items, {:.1} s.",
                r.model,
                r.variant,
                q.recipe.name(),
                recipes.join(", "),
                q.calibration_clips.unwrap_or(0),
                q.seconds
            );
        }
    }
    out.push('\n');
}
