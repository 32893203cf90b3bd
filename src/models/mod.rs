//! Models by name or path: built-in names resolve to pinned assets converted on first use.

use std::path::{Path, PathBuf};

use crate::assets::Cache;

pub mod blip;
pub mod whisper;

/// Names the cached conversions: a change to the exporter (or the ONNX code) gives new ones.
fn converter_revision() -> &'static str {
    &crate::assets::entry::CODE_REVISION[..12]
}

pub const BUILTIN_WHISPER: &[&str] = &["whisper-tiny.en", "whisper-base"];

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown model `{0}`: give a built-in name ({names}, {blip}) or a path to a model folder", names = BUILTIN_WHISPER.join(", "), blip = blip::builtin::BUILTIN_BLIP.join(", "))]
    Unknown(String),
    #[error("{0}: not a model folder (expected optimum's encoder_model.onnx/decoder_model.onnx/decoder_with_past_model.onnx, a CTranslate2 model.bin, or BLIP's vision_model.onnx/text_encoder.onnx/text_decoder_with_past.onnx)")]
    NotAModel(PathBuf),
    #[error(transparent)]
    Asset(#[from] crate::assets::AssetError),
    #[error(transparent)]
    Export(#[from] whisper::export::ExportError),
    #[error("{path}: {what}")]
    Io { path: PathBuf, what: String },
    #[error("{0}")]
    Builtin(String),
}

/// Sees every graph run's outputs (by graph file name): how calibration reads the activations it exposed.
pub type Observer =
    Box<dyn FnMut(&str, &ort::session::SessionOutputs) -> Result<(), String> + Send>;

/// The graph files of a model folder: BLIP's three, or the Whisper graphs present.
pub fn graph_files(dir: &Path) -> Vec<&'static str> {
    if dir.join(blip::model::VISION_FILE).is_file() {
        blip::model::GRAPH_FILES.to_vec()
    } else {
        whisper::model::graph_files(dir)
    }
}

/// A model folder ready for the pipeline, with where it came from.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub name: String,
    pub onnx_dir: PathBuf,
    /// sha256 over every file of the source folder (the CT2 folder or the ONNX folder given), or of the
    /// pinned weights for a built-in: anything that shapes an INT8 folder made from it is in this key.
    pub source_sha256: String,
}

impl ResolvedModel {
    pub fn is_blip(&self) -> bool {
        self.onnx_dir.join(blip::model::VISION_FILE).is_file()
    }

    pub fn kind(&self) -> crate::results::Kind {
        if self.is_blip() {
            crate::results::Kind::Blip
        } else {
            crate::results::Kind::Whisper
        }
    }
}

/// The name results carry for a model spec: a built-in's own name, else the folder's name.
pub fn display_name(spec: &str) -> String {
    if BUILTIN_WHISPER.contains(&spec) || blip::builtin::BUILTIN_BLIP.contains(&spec) {
        return spec.to_string();
    }
    Path::new(spec)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.to_string())
}

pub fn resolve(
    spec: &str,
    cache: &Cache,
    progress: &mut dyn FnMut(&str),
) -> Result<ResolvedModel, ResolveError> {
    if BUILTIN_WHISPER.contains(&spec) {
        let dir = cache.ensure(spec, progress)?;
        let ct2 = dir.join("ct2");
        let onnx = dir.join(format!("onnx-fp32-{}", converter_revision()));
        let mut sha = sha_of(&ct2.join("model.bin"))?;
        let pinned = Cache::pinned_sha256(spec, "ct2/model.bin");
        if pinned.is_some_and(|p| p != sha) {
            progress(&format!(
                "warning: {}: the cached weights do not match their pinned sha256 (changed after they were fetched); fetching them again",
                ct2.join("model.bin").display()
            ));
            cache.forget(spec, "ct2/model.bin");
            cache.ensure(spec, progress)?;
            sha = sha_of(&ct2.join("model.bin"))?;
            if pinned.is_some_and(|p| p != sha) {
                return Err(ResolveError::Io {
                    path: ct2.join("model.bin"),
                    what: "does not match its pinned sha256 even after fetching it again".into(),
                });
            }
        }
        convert_once(
            &ct2,
            &onnx,
            spec,
            &format!("{spec} weights {sha}"),
            progress,
        )?;
        return Ok(ResolvedModel {
            name: spec.to_string(),
            onnx_dir: onnx,
            source_sha256: sha,
        });
    }
    if blip::builtin::BUILTIN_BLIP.contains(&spec) {
        let dir = blip::builtin::ensure_builtin(spec, cache, progress)
            .map_err(|e| ResolveError::Builtin(format!("{e:#}")))?;
        // The cached folder's name already identifies its content (the embedded model's hash, or the
        // generator's revision): no need to hash 1.5 GB of graphs on every open.
        let tag = dir.file_name().unwrap_or_default().to_string_lossy();
        return Ok(ResolvedModel {
            name: spec.to_string(),
            source_sha256: crate::fsutil::sha256_bytes(tag.as_bytes()),
            onnx_dir: dir,
        });
    }
    let path = Path::new(spec);
    if !path.exists() {
        return Err(ResolveError::Unknown(spec.to_string()));
    }
    let name = display_name(spec);
    if path.join(blip::model::VISION_FILE).is_file() {
        return blip_model(name, path);
    }
    if path.join(whisper::model::ENCODER_FILE).is_file() {
        return Ok(ResolvedModel {
            name,
            source_sha256: folder_sha(path)?,
            onnx_dir: path.to_path_buf(),
        });
    }
    if path.join("model.bin").is_file() {
        let sha = folder_sha(path)?;
        let onnx =
            cache
                .root
                .join("converted")
                .join(format!("{}-{}", &sha[..16], converter_revision()));
        convert_once(
            path,
            &onnx,
            &name,
            &format!("CTranslate2 folder {sha}"),
            progress,
        )?;
        return Ok(ResolvedModel {
            name,
            onnx_dir: onnx,
            source_sha256: sha,
        });
    }
    Err(ResolveError::NotAModel(path.to_path_buf()))
}

fn blip_model(name: String, dir: &Path) -> Result<ResolvedModel, ResolveError> {
    Ok(ResolvedModel {
        name,
        onnx_dir: dir.to_path_buf(),
        source_sha256: folder_sha(dir)?,
    })
}

/// One sha256 over every file of a folder (names, sizes and contents; hidden files aside).
fn folder_sha(dir: &Path) -> Result<String, ResolveError> {
    let files = crate::assets::entry::digest(dir).map_err(|e| ResolveError::Io {
        path: dir.to_path_buf(),
        what: e.to_string(),
    })?;
    let mut all = String::new();
    for f in files {
        all += &format!("{} {} {}\n", f.file, f.bytes, f.sha256);
    }
    Ok(crate::fsutil::sha256_bytes(all.as_bytes()))
}

fn sha_of(path: &Path) -> Result<String, ResolveError> {
    crate::fsutil::sha256_file(path).map_err(|e| ResolveError::Io {
        path: path.to_path_buf(),
        what: e.to_string(),
    })
}

/// The cached conversion of `ct2`, made when absent and made again when its files no longer match its
/// record.
fn convert_once(
    ct2: &Path,
    onnx: &Path,
    name: &str,
    key: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<(), ResolveError> {
    use crate::fsutil::Publish;
    let mode = if onnx.is_dir() {
        let changes = crate::assets::entry::digest(onnx)
            .map(|files| crate::assets::entry::changes(onnx, &files))
            .unwrap_or_else(|e| vec![e.to_string()]);
        let sealed = onnx.join(crate::assets::entry::SEAL_FILE).is_file();
        if sealed && changes.is_empty() {
            return Ok(());
        }
        progress(&format!(
            "warning: {}: the cached conversion {}; converting again",
            onnx.display(),
            if sealed {
                format!("changed after it was made ({})", changes.join("; "))
            } else {
                "has no record of its files".to_string()
            }
        ));
        Publish::Replace
    } else {
        Publish::IfAbsent
    };
    progress(&format!(
        "convert {name}: CTranslate2 → ONNX ({}) ...",
        onnx.display()
    ));
    whisper::export::convert(ct2, onnx, Some(key), mode)?;
    Ok(())
}

/// What a model spec is: a BLIP (a built-in BLIP, or a folder in BLIP's layout) or else Whisper — decided
/// by the model itself, so a folder exported from a built-in is the same kind as the built-in.
pub fn kind_of(spec: &str) -> crate::results::Kind {
    let blip = blip::builtin::BUILTIN_BLIP.contains(&spec)
        || Path::new(spec).join(blip::model::VISION_FILE).is_file();
    if blip {
        crate::results::Kind::Blip
    } else {
        crate::results::Kind::Whisper
    }
}
