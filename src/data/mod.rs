//! Inputs: audio files, images and JSONL manifests.

pub mod audio;
pub mod easy_vqa;
pub mod image;
pub mod manifest;

use std::path::Path;

/// A dataset's content hash: sha256 over the manifest's hash and, in first-mention order, the hash of every
/// file it names. A file named many times (an image behind several questions) is read once.
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
            lines.push(hash(f)?);
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
        let e = super::dataset_sha256(&m, [dir.path().join("gone").as_path()]).unwrap_err();
        assert!(format!("{e:#}").contains("gone"), "{e:#}");
    }
}
