//! The record a cache entry quantbench makes (a converted, built-in or INT8 model folder) carries:
//! `.quantbench-entry.json`, written into the folder before it is published, with the entry's key and the
//! sha256 of every file. An entry whose files no longer match it was changed after it was made (a
//! same-size replacement included) and is rebuilt, never trusted.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub const SEAL_FILE: &str = ".quantbench-entry.json";
const SCHEMA: &str = "quantbench.entry/1";

/// The revision of the code that shapes a cache entry's content (the quantizer, the ONNX reader and
/// writer, the exporters): computed by build.rs from those sources, so only a change there rebuilds.
pub const CODE_REVISION: &str = env!("QUANTBENCH_CODE_SHA256");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedFile {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seal {
    pub schema: String,
    /// What the entry was made from and how (its cache key, in words).
    pub key: String,
    pub code_revision: String,
    pub files: Vec<SealedFile>,
}

/// Every regular, non-hidden file of `dir` by content, sorted by name.
pub fn digest(dir: &Path) -> std::io::Result<Vec<SealedFile>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if name.starts_with('.') || !p.is_file() {
            continue;
        }
        files.push(SealedFile {
            bytes: std::fs::metadata(&p)?.len(),
            sha256: crate::fsutil::sha256_file(&p)?,
            file: name,
        });
    }
    files.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(files)
}

/// Records `dir`'s files under `key` (call on the finished temp folder, before publishing it).
pub fn seal(dir: &Path, key: &str) -> std::io::Result<()> {
    let seal = Seal {
        schema: SCHEMA.into(),
        key: key.into(),
        code_revision: CODE_REVISION.into(),
        files: digest(dir)?,
    };
    let text = serde_json::to_string_pretty(&seal).map_err(std::io::Error::other)?;
    crate::fsutil::write_atomic(&dir.join(SEAL_FILE), text.as_bytes())
}

/// The seal of `dir`: `None` when it has none, an error when it has one that does not read.
pub fn read_seal(dir: &Path) -> Result<Option<Seal>, String> {
    let path = dir.join(SEAL_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let seal: Seal = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a cache record: {e}", path.display()))?;
    if seal.schema != SCHEMA {
        return Err(format!(
            "{}: unknown schema `{}`",
            path.display(),
            seal.schema
        ));
    }
    Ok(Some(seal))
}

/// What differs between `dir`'s seal and its files now (`actual`, as [`digest`] gives them); empty when the
/// entry is intact. An unsealed folder has nothing to differ from.
pub fn changes(dir: &Path, actual: &[SealedFile]) -> Vec<String> {
    let seal = match read_seal(dir) {
        Ok(Some(s)) => s,
        Ok(None) => return Vec::new(),
        Err(e) => return vec![e],
    };
    let mut out = Vec::new();
    for f in &seal.files {
        match actual.iter().find(|a| a.file == f.file) {
            None => out.push(format!("{} is missing", f.file)),
            Some(a) if a.sha256 != f.sha256 => out.push(format!(
                "{} has sha256 {}…, recorded {}…",
                f.file,
                &a.sha256[..12.min(a.sha256.len())],
                &f.sha256[..12.min(f.sha256.len())]
            )),
            Some(_) => {}
        }
    }
    for a in actual {
        if !seal.files.iter().any(|f| f.file == a.file) {
            out.push(format!("{} was added", a.file));
        }
    }
    out
}

/// Whether quantbench made `dir` (it holds a seal): only such folders may be replaced.
pub fn is_quantbench_output(dir: &Path) -> bool {
    dir.join(SEAL_FILE).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_same_size_replacement_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("encoder_model.onnx"), b"graph one").unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), b"{}").unwrap();
        assert!(
            changes(dir.path(), &digest(dir.path()).unwrap()).is_empty(),
            "unsealed"
        );
        seal(dir.path(), "test entry").unwrap();
        assert!(changes(dir.path(), &digest(dir.path()).unwrap()).is_empty());
        assert!(is_quantbench_output(dir.path()));

        std::fs::write(dir.path().join("encoder_model.onnx"), b"graph two").unwrap();
        let c = changes(dir.path(), &digest(dir.path()).unwrap());
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].starts_with("encoder_model.onnx has sha256"), "{c:?}");

        std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
        std::fs::write(dir.path().join("extra.bin"), b"x").unwrap();
        let c = changes(dir.path(), &digest(dir.path()).unwrap());
        assert!(c.iter().any(|l| l == "tokenizer.json is missing"), "{c:?}");
        assert!(c.iter().any(|l| l == "extra.bin was added"), "{c:?}");

        std::fs::write(dir.path().join(SEAL_FILE), b"not json").unwrap();
        let c = changes(dir.path(), &digest(dir.path()).unwrap());
        assert!(c[0].contains("not a cache record"), "{c:?}");
    }
}
