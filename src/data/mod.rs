//! Inputs: audio files, images and JSONL manifests.

pub mod audio;
pub mod easy_vqa;
pub mod image;
pub mod manifest;
pub mod recordings;

use std::path::Path;

/// A dataset's content hash: sha256 over the manifest's hash and, in first-mention order, the hash of every
/// file it names. A file named many times (an image behind several questions) is read once; one that
/// cannot be read counts as `unreadable` (its item fails on its own, and is reported there).
pub fn dataset_sha256<'a>(
    manifest: &Path,
    files: impl IntoIterator<Item = &'a Path>,
) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let hash = |p: &Path| crate::fsutil::sha256_file(p).with_context(|| p.display().to_string());
    let mut seen = std::collections::HashSet::new();
    let mut lines = vec![hash(manifest)?];
    for f in files {
        if seen.insert(f) {
            lines.push(hash(f).unwrap_or_else(|_| "unreadable".to_string()));
        }
    }
    Ok(crate::fsutil::sha256_bytes(lines.join("\n").as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_named_twice_is_hashed_once_and_order_counts() {
        let dir = tempfile::tempdir().unwrap();
        let (m, a, b) = (
            dir.path().join("m"),
            dir.path().join("a"),
            dir.path().join("b"),
        );
        for (p, t) in [(&m, "m"), (&a, "a"), (&b, "b")] {
            std::fs::write(p, t).unwrap();
        }
        let h =
            |files: &[&std::path::Path]| super::dataset_sha256(&m, files.iter().copied()).unwrap();
        assert_eq!(h(&[&a, &b, &a]), h(&[&a, &b]));
        assert_ne!(h(&[&a, &b]), h(&[&b, &a]));
        // A file that cannot be read is hashed as such (its item fails on its own); the manifest must be read.
        let gone = dir.path().join("gone");
        assert_ne!(h(&[&a, &gone]), h(&[&a]));
        let e = super::dataset_sha256(&gone, [a.as_path()]).unwrap_err();
        assert!(format!("{e:#}").contains("gone"), "{e:#}");
    }
}
