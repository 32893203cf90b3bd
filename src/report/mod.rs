//! Results → files. One `Exporter` per format; `write_report` writes every format atomically.

mod compare;
mod gate;
mod json;
mod markdown;
mod summary;
mod transcript;

use std::path::{Path, PathBuf};

use crate::results::ExperimentResult;

pub use compare::comparison_markdown;
pub use gate::{junit, verdict_table};
pub use json::Json;
pub use markdown::Markdown;
pub use summary::summary;
pub use transcript::{render as render_transcript, Transcript, TranscriptFormat};

pub trait Exporter {
    fn extension(&self) -> &'static str;
    fn render(&self, result: &ExperimentResult) -> String;
}

/// Writes `<out>/<UTC timestamp>-<name>[-partial].{md,json}` and returns the paths.
pub fn write_report(result: &ExperimentResult, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let stamp = chrono::DateTime::parse_from_rfc3339(&result.started_utc)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|_| chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string());
    let exporters: [&dyn Exporter; 2] = [&Markdown, &Json];
    // An incomplete report never replaces a complete one of the same run.
    let partial = if result.complete { "" } else { "-partial" };
    let rendered: Vec<(PathBuf, String)> = exporters
        .iter()
        .map(|e| {
            (
                out.join(format!(
                    "{stamp}-{}{partial}.{}",
                    result.name,
                    e.extension()
                )),
                e.render(result),
            )
        })
        .collect();
    // Markdown and JSON are published as a pair or not at all.
    let files: Vec<(&Path, &[u8])> = rendered
        .iter()
        .map(|(p, text)| (p.as_path(), text.as_bytes()))
        .collect();
    crate::fsutil::write_all_atomic(&files)?;
    let written = rendered.into_iter().map(|(p, _)| p).collect();
    Ok(written)
}
