//! Whether a re-run reproduced a report: every difference outside latency (config, environment, model and
//! dataset hashes, recipe parameters and seeds, accuracy, per-item outputs, non-latency verdicts).

use serde_json::Value;

use super::ExperimentResult;

/// Fields that hold times, or text made from times: a re-run is expected to differ there.
const TIMING_KEYS: &[&str] = &[
    "series",
    "speedup",
    "latency_ms",
    "seconds",
    "warnings",
    "histogram",
    "end_to_end_outside_ort_share",
    "started_utc",
    "finished_utc",
    "command_line",
    "eta_seconds",
    "compute_seconds",
    "real_time_factor",
    "real_time_factor_speedup",
];

const SIDECARS: &[&str] = &[crate::quant::SIDECAR_FILE, super::control::SIDECAR_FILE];

/// At most this many differences are listed per row; the rest are counted.
const PER_ROW: usize = 12;

fn strip(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for k in TIMING_KEYS {
                map.remove(*k);
            }
            // The sidecars carry the time quantizing took; their content is compared field by field
            // (`quantization`, `accuracy_control`), so their file hashes are not.
            if let Some(Value::Array(files)) = map.get_mut("files") {
                files.retain(|f| {
                    !f.get("file")
                        .and_then(Value::as_str)
                        .is_some_and(|n| SIDECARS.contains(&n))
                });
            }
            if let Some(Value::Array(verdicts)) = map.get_mut("verdicts") {
                verdicts.retain(|v| {
                    !v.get("check")
                        .and_then(Value::as_str)
                        .is_some_and(|c| c.starts_with("min_speedup"))
                });
            }
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

fn brief(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => diff(&format!("{path}.{k}"), va, vb, out),
                    None => out.push(format!("{path}.{k}: only in the old report")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: only in the new report"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a != b => out.push(format!("{path}: {} → {}", brief(a), brief(b))),
        _ => {}
    }
}

fn value_of<T: serde::Serialize>(t: &T) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    strip(&mut v);
    v
}

/// Every difference between `old` and `new` outside latency, one line each, report-level first.
pub fn differences(old: &ExperimentResult, new: &ExperimentResult) -> Vec<String> {
    let mut out = Vec::new();
    let head = |r: &ExperimentResult| {
        let mut v = value_of(r);
        if let Value::Object(map) = &mut v {
            map.remove("rows");
            // Where the experiment file was read from may differ; its text and sha256 are compared.
            map.remove("config_file");
        }
        v
    };
    diff("report", &head(old), &head(new), &mut out);
    let key = |r: &super::Row| format!("{} {}", r.model, r.variant);
    for a in &old.rows {
        let Some(b) = new.rows.iter().find(|b| key(b) == key(a)) else {
            out.push(format!("{}: only in the old report", key(a)));
            continue;
        };
        let mut found = Vec::new();
        diff(&key(a), &value_of(a), &value_of(b), &mut found);
        let more = found.len().saturating_sub(PER_ROW);
        out.extend(found.into_iter().take(PER_ROW));
        if more > 0 {
            out.push(format!("{}: … and {more} more differences", key(a)));
        }
    }
    for b in new
        .rows
        .iter()
        .filter(|b| !old.rows.iter().any(|a| key(a) == key(b)))
    {
        out.push(format!("{}: only in the new report", key(b)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_not_differences_but_everything_else_is() {
        let mut a = serde_json::json!({"series": {"x": 1}, "accuracy": {"value": 0.5},
            "verdicts": [{"check": "min_speedup.encoder", "pass": true}, {"check": "max_accuracy_drop_points", "pass": true}],
            "quantization": {"seconds": 3.0, "parameters": {"seed": 0}}});
        let mut b = serde_json::json!({"series": {"x": 2}, "accuracy": {"value": 0.5},
            "verdicts": [{"check": "min_speedup.encoder", "pass": false}, {"check": "max_accuracy_drop_points", "pass": true}],
            "quantization": {"seconds": 9.0, "parameters": {"seed": 0}}});
        strip(&mut a);
        strip(&mut b);
        let mut out = Vec::new();
        diff("row", &a, &b, &mut out);
        assert!(out.is_empty(), "{out:?}");
        b["quantization"]["parameters"]["seed"] = 1.into();
        diff("row", &a, &b, &mut out);
        assert_eq!(out, ["row.quantization.parameters.seed: 0 → 1"]);
    }
}
