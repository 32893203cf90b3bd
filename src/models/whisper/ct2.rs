//! Reader for CTranslate2 `model.bin` (binary version 6, as written by ctranslate2 4.x).
//! Layout: see the project docs (ct2-format.md). Every length is checked against the bytes that remain,
//! so a truncated or corrupt file gives an error naming the offset, never a panic or a huge allocation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt CTranslate2 model.bin at byte {offset}: {what}")]
    Corrupt {
        path: PathBuf,
        offset: usize,
        what: String,
    },
    #[error("{path}: unsupported CTranslate2 binary version {version} (only 6 is supported)")]
    Version { path: PathBuf, version: u32 },
    #[error("{path}: variable `{name}` missing from the model")]
    Missing { path: PathBuf, name: String },
    #[error("{path}: variable `{name}` has shape {shape:?}, expected {expected}")]
    Shape {
        path: PathBuf,
        name: String,
        shape: Vec<usize>,
        expected: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }
    fn item_size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 => 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<u8>,
}

impl Variable {
    /// Values widened to f32 (fp16/bf16 → f32 is exact).
    pub fn to_f32(&self) -> Vec<f32> {
        let d = &self.data;
        match self.dtype {
            DType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::I8 => d.iter().map(|&b| b as i8 as f32).collect(),
            DType::I16 => d
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
                .collect(),
            DType::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
        }
    }

    pub fn scalar_i64(&self) -> Option<i64> {
        if !self.shape.is_empty() && self.shape.iter().product::<usize>() != 1 {
            return None;
        }
        self.to_f32().first().map(|&v| v as i64)
    }
}

#[derive(Debug)]
pub struct Ct2Model {
    pub path: PathBuf,
    pub spec_name: String,
    pub spec_revision: u32,
    variables: BTreeMap<String, Variable>,
    aliases: BTreeMap<String, String>,
}

struct Cursor<'a> {
    path: &'a Path,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn corrupt(&self, what: impl Into<String>) -> Ct2Error {
        Ct2Error::Corrupt {
            path: self.path.to_path_buf(),
            offset: self.pos,
            what: what.into(),
        }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Ct2Error> {
        let remaining = self.buf.len() - self.pos;
        if n > remaining {
            return Err(self.corrupt(format!(
                "{what} needs {n} bytes but only {remaining} remain (file truncated?)"
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, Ct2Error> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, Ct2Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, Ct2Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, what: &str) -> Result<String, Ct2Error> {
        let n = self.u16(what)? as usize;
        let start = self.pos;
        let bytes = self.take(n, what)?;
        let text = bytes.strip_suffix(&[0]).ok_or_else(|| Ct2Error::Corrupt {
            path: self.path.to_path_buf(),
            offset: start,
            what: format!("{what} is not NUL-terminated"),
        })?;
        String::from_utf8(text.to_vec()).map_err(|_| Ct2Error::Corrupt {
            path: self.path.to_path_buf(),
            offset: start,
            what: format!("{what} is not UTF-8"),
        })
    }
}

impl Ct2Model {
    pub fn open(path: &Path) -> Result<Self, Ct2Error> {
        let buf = std::fs::read(path).map_err(|source| Ct2Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &buf)
    }

    pub fn parse(path: &Path, buf: &[u8]) -> Result<Self, Ct2Error> {
        let mut c = Cursor { path, buf, pos: 0 };
        let version = c.u32("binary version")?;
        if version != 6 {
            return Err(Ct2Error::Version {
                path: path.to_path_buf(),
                version,
            });
        }
        let spec_name = c.string("spec name")?;
        let spec_revision = c.u32("spec revision")?;
        let count = c.u32("variable count")? as usize;
        let mut variables = BTreeMap::new();
        for i in 0..count {
            let name = c.string(&format!("name of variable {i}"))?;
            let rank = c.u8("rank")? as usize;
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(c.u32("dimension")? as usize);
            }
            let dtype_id = c.u8("dtype")?;
            let dtype = DType::from_id(dtype_id).ok_or_else(|| {
                c.corrupt(format!("variable `{name}` has unknown dtype id {dtype_id}"))
            })?;
            let num_bytes = c.u32("byte count")? as usize;
            let expected = shape
                .iter()
                .try_fold(dtype.item_size(), |acc, &d| acc.checked_mul(d));
            if expected != Some(num_bytes) {
                return Err(c.corrupt(format!(
                    "variable `{name}` declares {num_bytes} bytes but shape {shape:?} of {dtype:?} needs {expected:?}"
                )));
            }
            let data = c.take(num_bytes, &format!("data of `{name}`"))?.to_vec();
            variables.insert(name, Variable { shape, dtype, data });
        }
        let mut aliases = BTreeMap::new();
        let n_alias = c.u32("alias count")? as usize;
        for _ in 0..n_alias {
            let alias = c.string("alias")?;
            let target = c.string("alias target")?;
            aliases.insert(alias, target);
        }
        if c.pos != buf.len() {
            return Err(c.corrupt(format!("{} unexpected trailing bytes", buf.len() - c.pos)));
        }
        Ok(Ct2Model {
            path: path.to_path_buf(),
            spec_name,
            spec_revision,
            variables,
            aliases,
        })
    }

    pub fn get(&self, name: &str) -> Result<&Variable, Ct2Error> {
        let resolved = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        self.variables
            .get(resolved)
            .ok_or_else(|| Ct2Error::Missing {
                path: self.path.clone(),
                name: name.to_string(),
            })
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_ok()
    }

    /// Tensor as f32 with its shape checked against `expected` (use 0 for "any").
    pub fn tensor(
        &self,
        name: &str,
        expected: &[usize],
    ) -> Result<(Vec<usize>, Vec<f32>), Ct2Error> {
        let v = self.get(name)?;
        let ok = v.shape.len() == expected.len()
            && v.shape
                .iter()
                .zip(expected)
                .all(|(&a, &e)| e == 0 || a == e);
        if !ok {
            return Err(Ct2Error::Shape {
                path: self.path.clone(),
                name: name.to_string(),
                shape: v.shape.clone(),
                expected: format!("{expected:?}"),
            });
        }
        Ok((v.shape.clone(), v.to_f32()))
    }

    /// The shape of `name`, which must have `rank` dimensions.
    pub fn shape(&self, name: &str, rank: usize) -> Result<&[usize], Ct2Error> {
        let v = self.get(name)?;
        if v.shape.len() != rank {
            return Err(Ct2Error::Shape {
                path: self.path.clone(),
                name: name.to_string(),
                shape: v.shape.clone(),
                expected: format!("rank {rank}"),
            });
        }
        Ok(&v.shape)
    }

    pub fn scalar(&self, name: &str) -> Result<i64, Ct2Error> {
        let v = self.get(name)?;
        v.scalar_i64().ok_or_else(|| Ct2Error::Shape {
            path: self.path.clone(),
            name: name.to_string(),
            shape: v.shape.clone(),
            expected: "a scalar".into(),
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.variables.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    fn sample() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        put_str(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        put_str(&mut b, "a/weight");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&half::f16::from_f32(1.5).to_le_bytes());
        b.extend_from_slice(&half::f16::from_f32(-2.0).to_le_bytes());
        put_str(&mut b, "a/num_heads");
        b.push(0);
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&6i16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        put_str(&mut b, "b/weight");
        put_str(&mut b, "a/weight");
        b
    }

    #[test]
    fn parses_variables_scalars_and_aliases() {
        let m = Ct2Model::parse(Path::new("x.bin"), &sample()).unwrap();
        assert_eq!(m.spec_name, "WhisperSpec");
        let (shape, data) = m.tensor("b/weight", &[2, 1]).unwrap();
        assert_eq!(shape, vec![2, 1]);
        assert_eq!(data, vec![1.5, -2.0]);
        assert_eq!(m.scalar("a/num_heads").unwrap(), 6);
        assert!(matches!(m.get("nope"), Err(Ct2Error::Missing { .. })));
        assert!(matches!(
            m.tensor("a/weight", &[3, 1]),
            Err(Ct2Error::Shape { .. })
        ));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = sample();
        for n in 0..full.len() {
            let err = Ct2Model::parse(Path::new("m.bin"), &full[..n]).unwrap_err();
            assert!(err.to_string().contains("m.bin"), "{err}");
        }
    }

    #[test]
    fn declared_size_larger_than_file_is_rejected() {
        let mut b = sample();
        // Variable 0's byte count sits right after name(2+9)+rank(1)+dims(8)+dtype(1) following the header.
        let header = 4 + 2 + 12 + 4 + 4;
        let at = header + 2 + 9 + 1 + 8 + 1;
        b[at..at + 4].copy_from_slice(&4_000_000_000u32.to_le_bytes());
        let err = Ct2Model::parse(Path::new("m.bin"), &b)
            .unwrap_err()
            .to_string();
        assert!(err.contains("declares 4000000000 bytes"), "{err}");
    }
}
