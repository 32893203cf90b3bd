use std::path::{Path, PathBuf};

use prost::Message;

use super::proto::ModelProto;

#[derive(Debug, thiserror::Error)]
pub enum OnnxIoError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid ONNX model: {source}")]
    Decode {
        path: PathBuf,
        source: prost::DecodeError,
    },
    #[error("{path}: not a usable ONNX model: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn read_model(path: &Path) -> Result<ModelProto, OnnxIoError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxIoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let model = ModelProto::decode(bytes.as_slice()).map_err(|source| OnnxIoError::Decode {
        path: path.to_path_buf(),
        source,
    })?;
    super::check::check_model(&model).map_err(|what| OnnxIoError::Invalid {
        path: path.to_path_buf(),
        what,
    })?;
    Ok(model)
}

/// Writes atomically: a temp file in the same folder, then rename.
pub fn write_model(model: &ModelProto, path: &Path) -> Result<(), OnnxIoError> {
    crate::fsutil::write_atomic(path, &model.encode_to_vec()).map_err(|source| OnnxIoError::Write {
        path: path.to_path_buf(),
        source,
    })
}
