//! JSONL speech manifests: one `{"audio": path relative to the manifest, "text": reference}` per line.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {what}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ManifestError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub what: String,
}

#[derive(Debug, Clone)]
pub struct SpeechItem {
    /// As written in the manifest (used in reports).
    pub audio_rel: String,
    /// Resolved against the manifest's folder.
    pub audio: PathBuf,
    pub text: String,
}

pub fn load_speech(path: &Path) -> Result<Vec<SpeechItem>, ManifestError> {
    let err = |line: Option<usize>, what: String| ManifestError {
        path: path.to_path_buf(),
        line,
        what,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(None, format!("cannot read manifest: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = Some(i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| err(n, format!("not a JSON object: {e}")))?;
        let field = |name: &str| -> Result<String, ManifestError> {
            v.get(name)
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .ok_or_else(|| err(n, format!("missing string field `{name}`")))
        };
        let audio_rel = field("audio")?;
        let reference = field("text")?;
        let audio = base.join(&audio_rel);
        if !audio.is_file() {
            return Err(err(
                n,
                format!("audio file {} does not exist", audio.display()),
            ));
        }
        items.push(SpeechItem {
            audio_rel,
            audio,
            text: reference,
        });
    }
    if items.is_empty() {
        return Err(err(None, "manifest has no items".into()));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_reported_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wav"), b"x").unwrap();
        let m = dir.path().join("m.jsonl");
        let cases = [
            (
                "{\"audio\": \"a.wav\", \"text\": \"hi\"}\nnot json\n",
                ":2: not a JSON object",
            ),
            (
                "{\"audio\": \"a.wav\"}\n",
                ":1: missing string field `text`",
            ),
            (
                "{\"audio\": \"gone.wav\", \"text\": \"hi\"}\n",
                "gone.wav does not exist",
            ),
            ("\n", "no items"),
        ];
        for (body, expect) in cases {
            std::fs::write(&m, body).unwrap();
            let e = load_speech(&m).unwrap_err().to_string();
            assert!(e.contains("m.jsonl") && e.contains(expect), "{e}");
        }
        std::fs::write(&m, "{\"audio\": \"a.wav\", \"text\": \"hi\"}\n").unwrap();
        let items = load_speech(&m).unwrap();
        assert_eq!(items[0].audio, dir.path().join("a.wav"));
    }
}
