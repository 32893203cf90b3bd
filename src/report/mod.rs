//! Results → files. One `Exporter` per format; `write_report` writes every format atomically.

mod json;
mod markdown;
mod summary;

use std::path::{Path, PathBuf};

use crate::results::ExperimentResult;

pub use json::Json;
pub use markdown::Markdown;
pub use summary::summary;

pub trait Exporter {
    fn extension(&self) -> &'static str;
    fn render(&self, result: &ExperimentResult) -> String;
}

/// Writes `<out>/<UTC timestamp>-<name>.{md,json}` and returns the paths.
pub fn write_report(result: &ExperimentResult, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let stamp = chrono::DateTime::parse_from_rfc3339(&result.started_utc)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|_| chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string());
    let exporters: [&dyn Exporter; 2] = [&Markdown, &Json];
    let mut written = Vec::new();
    for e in exporters {
        let path = out.join(format!("{stamp}-{}.{}", result.name, e.extension()));
        crate::fsutil::write_atomic(&path, e.render(result).as_bytes())?;
        written.push(path);
    }
    Ok(written)
}
