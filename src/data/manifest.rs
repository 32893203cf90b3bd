//! JSONL manifests, paths relative to the manifest's folder: speech (`{"audio", "text"}`), VQA
//! (`{"image", "question", "answers"}`) and captions (`{"image", "captions"}`), one object per line.

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

/// What a manifest holds, told by the fields of its first item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Speech,
    Vqa,
    Captions,
}

pub fn kind_of(path: &Path) -> Result<ManifestKind, ManifestError> {
    let err = |what: String| ManifestError {
        path: path.to_path_buf(),
        line: None,
        what,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| err(format!("cannot read manifest: {e}")))?;
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| err("manifest has no items".into()))?;
    let v: serde_json::Value = serde_json::from_str(first)
        .map_err(|e| err(format!("first item is not a JSON object: {e}")))?;
    let has = |k: &str| v.get(k).is_some();
    if has("audio") {
        Ok(ManifestKind::Speech)
    } else if has("question") {
        Ok(ManifestKind::Vqa)
    } else if has("captions") {
        Ok(ManifestKind::Captions)
    } else {
        Err(err(
            "items need `audio` (speech), `question` (VQA) or `captions` (captioning)".into(),
        ))
    }
}

/// A VQA question: `{"image": path, "question": ..., "answers": [...], "answer_type"?: ...}`. One answer
/// (easy-VQA) or the annotators' ten (VQA v2).
#[derive(Debug, Clone)]
pub struct VqaItem {
    pub image_rel: String,
    pub image: PathBuf,
    pub question: String,
    pub answers: Vec<String>,
    pub answer_type: Option<String>,
}

/// A captioned image: `{"image": path, "captions": [...]}`.
#[derive(Debug, Clone)]
pub struct CaptionItem {
    pub image_rel: String,
    pub image: PathBuf,
    pub captions: Vec<String>,
}

/// One manifest line being read: its number and object, for fields with errors that name both.
struct Line<'a> {
    path: &'a Path,
    base: &'a Path,
    number: usize,
    value: serde_json::Value,
}

impl Line<'_> {
    fn err(&self, what: String) -> ManifestError {
        ManifestError {
            path: self.path.to_path_buf(),
            line: Some(self.number),
            what,
        }
    }

    fn string(&self, name: &str) -> Result<String, ManifestError> {
        self.value
            .get(name)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .ok_or_else(|| self.err(format!("missing string field `{name}`")))
    }

    /// A non-empty list of non-empty strings.
    fn strings(&self, name: &str) -> Result<Vec<String>, ManifestError> {
        let list = self
            .value
            .get(name)
            .and_then(|x| x.as_array())
            .ok_or_else(|| self.err(format!("missing list field `{name}`")))?;
        let strings: Option<Vec<String>> = list
            .iter()
            .map(|x| {
                x.as_str()
                    .filter(|s| !s.trim().is_empty())
                    .map(str::to_string)
            })
            .collect();
        match strings {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(self.err(format!(
                "`{name}` must be a non-empty list of non-empty strings"
            ))),
        }
    }

    /// A path field, resolved against the manifest's folder; the file must exist.
    fn file(&self, name: &str) -> Result<(String, PathBuf), ManifestError> {
        let rel = self.string(name)?;
        let path = self.base.join(&rel);
        if !path.is_file() {
            return Err(self.err(format!("{name} file {} does not exist", path.display())));
        }
        Ok((rel, path))
    }
}

/// Parses every non-empty line of `path` with `item`; an empty manifest is an error.
fn load<T>(
    path: &Path,
    mut item: impl FnMut(&Line) -> Result<T, ManifestError>,
) -> Result<Vec<T>, ManifestError> {
    let err = |line: Option<usize>, what: String| ManifestError {
        path: path.to_path_buf(),
        line,
        what,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(None, format!("cannot read manifest: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(raw)
            .map_err(|e| err(Some(i + 1), format!("not a JSON object: {e}")))?;
        items.push(item(&Line {
            path,
            base,
            number: i + 1,
            value,
        })?);
    }
    if items.is_empty() {
        return Err(err(None, "manifest has no items".into()));
    }
    Ok(items)
}

pub fn load_speech(path: &Path) -> Result<Vec<SpeechItem>, ManifestError> {
    load(path, |l| {
        let text = l.string("text")?;
        let (audio_rel, audio) = l.file("audio")?;
        Ok(SpeechItem {
            audio_rel,
            audio,
            text,
        })
    })
}

pub fn load_vqa(path: &Path) -> Result<Vec<VqaItem>, ManifestError> {
    load(path, |l| {
        let question = l.string("question")?;
        if question.trim().is_empty() {
            return Err(l.err("empty question".into()));
        }
        let answers = l.strings("answers")?;
        let (image_rel, image) = l.file("image")?;
        let answer_type = l
            .value
            .get("answer_type")
            .and_then(|x| x.as_str())
            .map(str::to_string);
        Ok(VqaItem {
            image_rel,
            image,
            question,
            answers,
            answer_type,
        })
    })
}

pub fn load_captions(path: &Path) -> Result<Vec<CaptionItem>, ManifestError> {
    load(path, |l| {
        let captions = l.strings("captions")?;
        let (image_rel, image) = l.file("image")?;
        Ok(CaptionItem {
            image_rel,
            image,
            captions,
        })
    })
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

    #[test]
    fn vqa_and_caption_lines_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("i.png"), b"x").unwrap();
        let m = dir.path().join("q.jsonl");
        let cases = [
            (
                r#"{"image": "i.png", "question": " ", "answers": ["red"]}"#,
                ":1: empty question",
            ),
            (
                r#"{"image": "i.png", "question": "what?"}"#,
                "missing list field `answers`",
            ),
            (
                r#"{"image": "i.png", "question": "what?", "answers": []}"#,
                "non-empty list",
            ),
            (
                r#"{"image": "i.png", "question": "what?", "answers": [3]}"#,
                "non-empty list",
            ),
            (
                r#"{"image": "no.png", "question": "what?", "answers": ["red"]}"#,
                "no.png does not exist",
            ),
        ];
        for (body, expect) in cases {
            std::fs::write(&m, body).unwrap();
            let e = load_vqa(&m).unwrap_err().to_string();
            assert!(e.contains("q.jsonl") && e.contains(expect), "{e}");
        }
        std::fs::write(
            &m,
            r#"{"image": "i.png", "question": "what?", "answers": ["red", "blue"], "answer_type": "colour"}"#,
        )
        .unwrap();
        let q = load_vqa(&m).unwrap();
        assert_eq!(
            (q[0].answers.len(), q[0].answer_type.as_deref()),
            (2, Some("colour"))
        );
        std::fs::write(&m, r#"{"image": "i.png", "captions": ["a red circle"]}"#).unwrap();
        assert_eq!(load_captions(&m).unwrap()[0].captions, vec!["a red circle"]);
        std::fs::write(&m, r#"{"image": "i.png", "captions": [""]}"#).unwrap();
        assert!(load_captions(&m)
            .unwrap_err()
            .to_string()
            .contains("captions"));
    }
}
