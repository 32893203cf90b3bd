//! `quantbench cache verify`: every pinned asset file hashed against its pin, every entry quantbench made
//! (converted, built-in and INT8 folders) against its record.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::Outcome;
use crate::assets::{entry, Cache, ASSETS};

/// Folders under `root` (to a few levels) that carry an entry record.
fn sealed_entries(root: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if root.join(entry::SEAL_FILE).is_file() {
        out.push(root.to_path_buf());
        return;
    }
    if depth == 0 {
        return;
    }
    let Ok(dir) = std::fs::read_dir(root) else {
        return;
    };
    let mut children: Vec<PathBuf> = dir
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    for c in children {
        sealed_entries(&c, depth - 1, out);
    }
}

pub fn verify(cache: &Cache) -> Result<Outcome> {
    let (mut checked, mut bad) = (0usize, Vec::new());
    for asset in ASSETS {
        let dir = cache.asset_dir(asset);
        for f in asset.files {
            let path = dir.join(f.path);
            if !path.is_file() {
                continue;
            }
            checked += 1;
            match crate::fsutil::sha256_file(&path) {
                Ok(sha) if sha == f.sha256 => println!("ok       {}", path.display()),
                Ok(sha) => bad.push(format!(
                    "{}: sha256 {sha}, pinned {} (fetch it again: `quantbench fetch {}`)",
                    path.display(),
                    f.sha256,
                    asset.name
                )),
                Err(e) => bad.push(format!("{}: cannot read: {e}", path.display())),
            }
        }
    }
    let mut entries = Vec::new();
    sealed_entries(&cache.root, 4, &mut entries);
    for dir in entries {
        checked += 1;
        let changes = match entry::digest(&dir) {
            Ok(files) => entry::changes(&dir, &files),
            Err(e) => vec![format!("cannot read: {e}")],
        };
        if changes.is_empty() {
            println!("ok       {}", dir.display());
        } else {
            bad.push(format!("{}: {}", dir.display(), changes.join("; ")));
        }
    }
    for b in &bad {
        println!("changed  {b}");
    }
    println!(
        "{checked} cached files and folders checked, {} changed",
        bad.len()
    );
    if !bad.is_empty() {
        bail!(
            "{} cache entries do not match their records; delete them (`rm -r`) and they are made again on next use",
            bad.len()
        );
    }
    Ok(Outcome::Done)
}
