//! File helpers shared by every writer: nothing is ever left half-written.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to a temp file beside `path`, syncs it, then renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    let file = tmp.persist(path).map_err(|e| e.error)?;
    make_readable(&file)
}

/// Temp files are created 0600; results and cached assets are ordinary files (0644).
pub fn make_readable(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex(&h.finalize()))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A temp folder in `parent` named `.PURPOSE-PID-XXXX`: removed when dropped, and by [`sweep_leftovers`] at
/// a later start if this process was killed before it could remove it.
pub fn work_dir(parent: &Path, purpose: &str) -> std::io::Result<tempfile::TempDir> {
    std::fs::create_dir_all(parent)?;
    tempfile::Builder::new()
        .prefix(&format!(".{purpose}-{}-", std::process::id()))
        .tempdir_in(parent)
}

/// A temp file in `parent` named as [`work_dir`] names folders.
fn work_file(parent: &Path, purpose: &str) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".{purpose}-{}-", std::process::id()))
        .tempfile_in(parent)
}

/// The PID a leftover's name (`.PURPOSE-PID-XXXX`) carries.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let mut fields = rest.split('-');
    let (_purpose, pid, _random) = (fields.next()?, fields.next()?, fields.next()?);
    pid.parse().ok()
}

/// Removes the temp files and folders a killed quantbench left in `dir` (those whose process is gone);
/// returns how many. Live processes' work and every other file are left alone.
pub fn sweep_leftovers(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let alive = |pid: u32| pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        let p = e.path();
        let ok = if p.is_dir() {
            std::fs::remove_dir_all(&p).is_ok()
        } else {
            std::fs::remove_file(&p).is_ok()
        };
        removed += usize::from(ok);
    }
    removed
}

/// How [`publish_dir`] treats a folder already at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Another process published first: keep its folder, discard ours (cache entries, which are equal
    /// by construction).
    IfAbsent,
    /// Swap ours in: the old folder is renamed aside, then removed.
    Replace,
}

/// Who [`publish_dir`]'s destination holds afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Ours,
    Theirs,
}

/// Renames the finished temp folder `tmp` to `dst`. Nothing is deleted that another process may be using:
/// under `IfAbsent`, losing the race keeps the winner's folder; under `Replace`, the old folder is moved
/// aside before ours goes in. On every failure `tmp` is removed (it is kept only once renamed).
pub fn publish_dir(
    tmp: tempfile::TempDir,
    dst: &Path,
    mode: Publish,
) -> std::io::Result<Published> {
    let parent = dst
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut aside = None;
    if mode == Publish::Replace && dst.exists() {
        let trash = work_dir(parent, "replaced")?;
        let old = trash.path().join("old");
        std::fs::rename(dst, &old)?;
        aside = Some((trash, old));
    }
    match std::fs::rename(tmp.path(), dst) {
        Ok(()) => {
            // Renamed away: nothing is left for the guard to remove.
            let _ = tmp.keep();
            Ok(Published::Ours)
        }
        Err(_) if mode == Publish::IfAbsent && dst.is_dir() => Ok(Published::Theirs),
        Err(e) => {
            if let Some((_, old)) = &aside {
                let _ = std::fs::rename(old, dst);
            }
            Err(e)
        }
    }
}

/// Writes several files so that they appear together: every file is written and synced under a temp
/// name first, then each is renamed into place. A failure before the renames leaves none of them.
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> std::io::Result<()> {
    let mut staged = Vec::new();
    for (path, bytes) in files {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)?;
        let mut tmp = work_file(dir, "report")?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        make_readable(tmp.as_file())?;
        staged.push((tmp, *path));
    }
    for (tmp, path) in staged {
        tmp.persist(path).map_err(|e| e.error)?;
    }
    Ok(())
}

/// Writes a folder through a temp folder beside `out`, then puts it in place (replacing an older `out`),
/// so a failure never leaves a half-written folder under the final name.
pub fn write_dir_atomic(
    out: &Path,
    write: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    let tmp = work_dir(parent, "write").with_context(|| parent.display().to_string())?;
    write(tmp.path())?;
    publish_dir(tmp, out, Publish::Replace).with_context(|| out.display().to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_dead_processes_are_swept_and_live_work_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let live = work_dir(dir.path(), "quantize").unwrap();
        // PID 0x7fff_fffe is beyond Linux's pid_max.
        let dead = dir.path().join(".quantize-2147483646-abc");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("encoder_model.onnx"), b"half").unwrap();
        std::fs::write(dir.path().join(".report-2147483646-x"), b"half").unwrap();
        std::fs::write(dir.path().join("keep.json"), b"{}").unwrap();
        assert_eq!(sweep_leftovers(dir.path()), 2);
        assert!(live.path().exists() && dir.path().join("keep.json").exists());
        assert!(!dead.exists());
    }

    #[test]
    fn files_written_together_appear_together() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("r.md"), dir.path().join("r.json"));
        write_all_atomic(&[(&a, b"md"), (&b, b"{}")]).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"md");
        assert_eq!(std::fs::read(&b).unwrap(), b"{}");
        // A file that cannot be staged (its folder is a file) leaves the others unwritten.
        let c = dir.path().join("new.md");
        let bad = a.join("x.json");
        assert!(write_all_atomic(&[(&c, b"md"), (&bad, b"{}")]).is_err());
        assert!(!c.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp left"
        );
    }
}
