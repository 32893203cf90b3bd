use std::fmt::Write;

use super::Exporter;
use crate::measure::stats::Summary;
use crate::results::{ExperimentResult, ModelResult};

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
        for m in &r.models {
            model_section(&mut out, m);
        }
        out
    }
}
