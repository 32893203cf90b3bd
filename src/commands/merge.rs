use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::Outcome;
use crate::cli::GateArgs;
use crate::config::Thresholds;
use crate::results::shard::{merge, Merged, ShardFile, SHARD_SCHEMA};
use crate::results::{ExperimentResult, PartSize, Row, VsFp32, SCHEMA};

fn read_shard(path: &Path) -> Result<ShardFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the shard", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON shard file", path.display()))?;
    let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    anyhow::ensure!(
        schema == SHARD_SCHEMA,
        "{}: not a shard file (schema `{schema}`, expected `{SHARD_SCHEMA}`; write shards with `eval --shard I/N --json FILE`)",
        path.display()
    );
    serde_json::from_value(value).with_context(|| format!("{}: malformed shard", path.display()))
}

fn row_of(m: &Merged) -> Row {
    Row {
        model: m.model.clone(),
        kind: m.kind,
        variant: m.variant.clone(),
        source_sha256: m.source_sha256.clone(),
        dataset: m.dataset.clone(),
        dataset_sha256: m.dataset_sha256.clone(),
        parts: m
            .files
            .iter()
            .filter(|f| f.file.ends_with(".onnx"))
            .map(|f| PartSize {
                part: f.file.trim_end_matches(".onnx").to_string(),
                bytes: f.bytes,
                sha256: f.sha256.clone(),
            })
            .collect(),
        files: m.files.clone(),
        quantization: None,
        accuracy_control: None,
        series: BTreeMap::new(),
        accuracy: m.accuracy.clone(),
        vs_fp32: None,
        verdicts: Vec::new(),
        warnings: vec![format!(
            "accuracy merged from {} shards; latency is never pooled across machines",
            m.shards
        )],
        worst: Vec::new(),
        setup: [("shards".to_string(), m.shards.into())].into(),
        evaluation: None,
        failed_items: Vec::new(),
        long_form: None,
    }
}

/// `quantbench merge SHARD.json… --json OUT`: totals per variant from the per-item counts, FP32 as the
/// baseline of the others, gated like `gate`.
pub fn run(
    shards: &[PathBuf],
    json: &Path,
    thresholds: &Thresholds,
    gate_args: &GateArgs,
) -> Result<Outcome> {
    let files = shards
        .iter()
        .map(|p| Ok((p.display().to_string(), read_shard(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let merged = merge(&files)?;
    let mut rows: Vec<Row> = merged.iter().map(row_of).collect();
    // FP32 first, as in a report: the baseline of the other rows.
    rows.sort_by_key(|r| r.variant != crate::engine::BASELINE);
    if let Some(base) = rows
        .iter()
        .position(|r| r.variant == crate::engine::BASELINE)
    {
        let (metric, base_value, base_bytes) = (
            rows[base].accuracy.metric,
            rows[base].accuracy.value,
            rows[base].bytes(),
        );
        for (_, row) in rows.iter_mut().enumerate().filter(|(i, _)| *i != base) {
            let mut vs = VsFp32 {
                speedup: BTreeMap::new(),
                accuracy_drop_points: None,
                relative_accuracy: None,
                size_ratio: row.bytes() as f64 / base_bytes.max(1) as f64,
            };
            if let (Some(x), Some(y)) = (base_value, row.accuracy.value) {
                vs.accuracy_drop_points = Some(metric.drop_points(x, y));
                let ax = metric.accuracy(x);
                vs.relative_accuracy = (ax > 0.0).then(|| metric.accuracy(y) / ax);
            }
            row.verdicts = crate::engine::verdicts::verdicts(thresholds, &vs);
            row.vs_fp32 = Some(vs);
        }
    }
    let first = &files[0].1;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let result = ExperimentResult {
        schema: SCHEMA.to_string(),
        complete: true,
        name: format!("merge-{}", first.model),
        started_utc: now.clone(),
        finished_utc: now,
        config_file: String::new(),
        config: serde_json::to_string(&first.config).unwrap_or_default(),
        config_sha256: first.config_sha256.clone(),
        command_line: std::env::args().collect(),
        interrupted: None,
        environment: first.environment.clone(),
        measure: serde_json::Value::Null,
        settings_changed: Vec::new(),
        rows,
    };
    let text = serde_json::to_string_pretty(&result)? + "\n";
    crate::fsutil::write_atomic(json, text.as_bytes())
        .with_context(|| format!("{}: cannot write", json.display()))?;
    for r in &result.rows {
        let value = r.accuracy.value.unwrap_or(f64::NAN);
        println!(
            "{} {}: {} {:.4} % over {} items from {} shards",
            r.model,
            r.variant,
            r.accuracy.metric.label(),
            value * 100.0,
            r.accuracy.n.unwrap_or(0),
            r.setup.get("shards").and_then(|v| v.as_u64()).unwrap_or(0)
        );
    }
    super::gate::apply(&result, json, gate_args)
}
