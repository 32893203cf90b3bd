//! ONNX Runtime: finding the shared library, one process-wide environment, sessions with a thread count.
//!
//! The library is looked up in this order: `ORT_DYLIB_PATH`, the experiment config (`[runtime] ort_library`),
//! the asset cache; when none has it, the pinned `onnxruntime` asset is fetched into the cache.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;

use crate::assets::Cache;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library {path}: {what}")]
    Library { path: PathBuf, what: String },
    #[error(transparent)]
    Asset(#[from] crate::assets::AssetError),
    #[error("{path}: ONNX Runtime cannot load this model: {what}")]
    Session { path: PathBuf, what: String },
}

#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    pub library: PathBuf,
    pub version: String,
}

static RUNTIME: OnceLock<(ort::environment::Environment, RuntimeInfo)> = OnceLock::new();

/// Where the library comes from, in the documented order.
pub fn locate_library(
    configured: Option<&Path>,
    cache: &Cache,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, RuntimeError> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    let dir = cache.ensure("onnxruntime", progress)?;
    let lib = dir.join(crate::assets::ORT_LIBRARY_FILE);
    // The cache's marker and size say a fetch finished; the content hash says nobody replaced the library
    // since. Its code runs in this process, so it is hashed at every start.
    if is_pinned(&lib) {
        return Ok(lib);
    }
    progress(&format!(
        "warning: {} does not match its pinned sha256 (corrupt or replaced); fetching it again",
        lib.display()
    ));
    for stale in [
        lib.clone(),
        lib.with_file_name(format!("{}.sha256", crate::assets::ORT_LIBRARY_FILE)),
    ] {
        let _ = std::fs::remove_file(stale);
    }
    let lib = cache
        .ensure("onnxruntime", progress)?
        .join(crate::assets::ORT_LIBRARY_FILE);
    if is_pinned(&lib) {
        Ok(lib)
    } else {
        Err(RuntimeError::Library {
            path: lib,
            what: "does not match its pinned sha256 even after fetching it again".into(),
        })
    }
}

/// The sha256 the asset list pins for the ONNX Runtime library.
fn pinned_sha256() -> &'static str {
    crate::assets::ASSETS
        .iter()
        .flat_map(|a| a.files)
        .find(|f| f.path == crate::assets::ORT_LIBRARY_FILE)
        .map_or("", |f| f.sha256)
}

fn is_pinned(lib: &Path) -> bool {
    crate::fsutil::sha256_file(lib).is_ok_and(|h| h == pinned_sha256())
}

/// An experiment file's `[runtime] ort_library` is loaded only when it is the pinned ONNX Runtime, or when
/// the user trusts it (`--trust-library`): loading a library runs its code.
pub fn check_configured_library(path: &Path, trusted: bool) -> Result<(), RuntimeError> {
    if trusted || is_pinned(path) {
        return Ok(());
    }
    let what = match crate::fsutil::sha256_file(path) {
        Ok(h) => format!(
            "is not the pinned ONNX Runtime 1.31.1 (sha256 {h}, pinned {}); an experiment file is code: a library it names runs its constructors when loaded; pass --trust-library to load it anyway",
            pinned_sha256()
        ),
        Err(e) => format!("cannot be read: {e}"),
    };
    Err(RuntimeError::Library {
        path: path.to_path_buf(),
        what,
    })
}

/// Loads the library once per process; later calls return the same runtime.
pub fn init(library: &Path) -> Result<&'static RuntimeInfo, RuntimeError> {
    if let Some((_, info)) = RUNTIME.get() {
        return Ok(info);
    }
    if !library.is_file() {
        return Err(RuntimeError::Library {
            path: library.to_path_buf(),
            what: "file not found (set ORT_DYLIB_PATH, or run `quantbench fetch onnxruntime`)"
                .into(),
        });
    }
    let lib_err = |what: String| RuntimeError::Library {
        path: library.to_path_buf(),
        what,
    };
    let version = library_version(library).map_err(lib_err)?;
    if !version.starts_with("1.31.") {
        return Err(lib_err(format!(
            "is ONNX Runtime {version}; quantbench needs 1.31.x"
        )));
    }
    let builder = ort::init_from(library).map_err(|e| lib_err(e.to_string()))?;
    let env = builder
        .with_name("quantbench")
        .build()
        .map_err(|e| lib_err(format!("cannot create an environment: {e}")))?;
    let info = RuntimeInfo {
        library: library.to_path_buf(),
        version,
    };
    let _ = RUNTIME.set((env, info));
    Ok(&RUNTIME.get().expect("just set").1)
}

pub fn info() -> Option<&'static RuntimeInfo> {
    RUNTIME.get().map(|(_, i)| i)
}

/// The library's own version string (`OrtGetApiBase()->GetVersionString()`), read before `ort` loads it so
/// that a wrong version is reported as such rather than as a failed API call.
fn library_version(library: &Path) -> Result<String, String> {
    #[repr(C)]
    struct OrtApiBase {
        get_api: unsafe extern "C" fn(u32) -> *const std::ffi::c_void,
        get_version_string: unsafe extern "C" fn() -> *const std::ffi::c_char,
    }
    // SAFETY: loading a shared library runs its initialisers; this is the library ORT itself will load next.
    let lib =
        unsafe { libloading::Library::new(library) }.map_err(|e| format!("cannot load: {e}"))?;
    // SAFETY: the symbol's signature is ONNX Runtime's stable C entry point `const OrtApiBase* OrtGetApiBase(void)`.
    let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const OrtApiBase> =
        unsafe { lib.get(b"OrtGetApiBase\0") }
            .map_err(|_| "not an ONNX Runtime library (no OrtGetApiBase)".to_string())?;
    // SAFETY: OrtGetApiBase returns a pointer to a static struct; GetVersionString a static NUL-terminated string.
    let version = unsafe {
        let base = get_base();
        if base.is_null() {
            return Err("OrtGetApiBase returned null".into());
        }
        let s = ((*base).get_version_string)();
        if s.is_null() {
            return Err("GetVersionString returned null".into());
        }
        std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned()
    };
    // Keep the library mapped: ORT will use the same handle.
    std::mem::forget(lib);
    Ok(version)
}

/// Threads per session: the configured count, else every core.
/// One session call, its time added to `in_ort`: how every pipeline tells time in ONNX Runtime from time
/// outside it.
pub fn run_timed<'s, 'i, 'v: 'i, const N: usize>(
    session: &'s mut Session,
    inputs: impl Into<ort::session::SessionInputs<'i, 'v, N>>,
    in_ort: &mut std::time::Duration,
) -> ort::Result<ort::session::SessionOutputs<'s>> {
    let t = std::time::Instant::now();
    let out = session.run(inputs);
    *in_ort += t.elapsed();
    out
}

/// A session's input or output side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Inputs,
    Outputs,
}

impl Side {
    pub fn noun(self) -> &'static str {
        match self {
            Side::Inputs => "input",
            Side::Outputs => "output",
        }
    }
}

/// The tensor names on one side of a session.
pub fn io_names(session: &Session, side: Side) -> Vec<String> {
    match side {
        Side::Inputs => session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect(),
        Side::Outputs => session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect(),
    }
}

/// The names in `wanted` a session lacks on `side`: the one I/O check every model loader uses.
pub fn absent<S: AsRef<str>>(session: &Session, side: Side, wanted: &[S]) -> Vec<String> {
    let have = io_names(session, side);
    wanted
        .iter()
        .map(|w| w.as_ref())
        .filter(|w| !have.iter().any(|h| h == w))
        .map(str::to_string)
        .collect()
}

/// The dimension at `axis` of tensor `name` on one side of a session, when the graph fixes it.
pub fn fixed_dim(session: &Session, side: Side, name: &str, axis: usize) -> Option<i64> {
    let shape = match side {
        Side::Inputs => session
            .inputs()
            .iter()
            .find(|i| i.name() == name)?
            .dtype()
            .tensor_shape()
            .map(|s| s.iter().copied().collect::<Vec<i64>>()),
        Side::Outputs => session
            .outputs()
            .iter()
            .find(|o| o.name() == name)?
            .dtype()
            .tensor_shape()
            .map(|s| s.iter().copied().collect::<Vec<i64>>()),
    }?;
    let axis = if axis == usize::MAX {
        shape.len().checked_sub(1)?
    } else {
        axis
    };
    shape.get(axis).copied().filter(|&d| d > 0)
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn session(path: &Path, intra_threads: usize) -> Result<Session, RuntimeError> {
    let (env, _) = RUNTIME.get().ok_or_else(|| RuntimeError::Session {
        path: path.to_path_buf(),
        what: "runtime not initialised".into(),
    })?;
    let fail = |what: String| RuntimeError::Session {
        path: path.to_path_buf(),
        what,
    };
    let mut builder = Session::builder(env)
        .map_err(|e| fail(e.to_string()))?
        .with_intra_threads(intra_threads)
        .map_err(|e| fail(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| fail(e.to_string()))?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
        .map_err(|e| fail(e.to_string()))?;
    // For profiling by hand: ONNX Runtime writes a per-node JSON trace with this prefix per session.
    if let Some(prefix) = std::env::var_os("QUANTBENCH_ORT_PROFILE").filter(|p| !p.is_empty()) {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut file = PathBuf::from(prefix).into_os_string();
        file.push(format!("-{stem}"));
        builder = builder
            .with_profiling(PathBuf::from(file))
            .map_err(|e| fail(e.to_string()))?;
    }
    builder
        .commit_from_file(path)
        .map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_that_is_not_onnx_runtime_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libonnxruntime.so");
        std::fs::write(&fake, b"not a library").unwrap();
        let e = super::library_version(&fake).unwrap_err();
        assert!(e.contains("cannot load"), "{e}");
    }
}
