//! Structural checks on a decoded ONNX model, run on every graph read from a file, so later code may
//! index what it checked: each initializer's dims are non-negative, their product does not overflow, and
//! its data holds exactly that many elements; each node of an op the quantizer rewrites has the inputs and
//! outputs that op takes.

use super::proto::tensor_proto::{DataLocation, DataType};
use super::proto::{ModelProto, NodeProto, TensorProto};

/// Elements a tensor's dims describe, or why they are not a shape.
pub fn element_count(dims: &[i64]) -> Result<u64, String> {
    dims.iter().try_fold(1u64, |acc, &d| {
        let d = u64::try_from(d).map_err(|_| format!("dims {dims:?} hold a negative size"))?;
        acc.checked_mul(d)
            .ok_or_else(|| format!("dims {dims:?} overflow 64 bits"))
    })
}

/// Bytes per element in `raw_data`, for the types whose size is fixed.
fn item_size(data_type: i32) -> Option<u64> {
    use DataType as T;
    Some(match DataType::try_from(data_type).ok()? {
        T::Bool
        | T::Int8
        | T::Uint8
        | T::Float8e4m3fn
        | T::Float8e4m3fnuz
        | T::Float8e5m2
        | T::Float8e5m2fnuz => 1,
        T::Float16 | T::Bfloat16 | T::Int16 | T::Uint16 => 2,
        T::Float | T::Int32 | T::Uint32 => 4,
        T::Double | T::Int64 | T::Uint64 | T::Complex64 => 8,
        T::Complex128 => 16,
        _ => return None,
    })
}

/// How many values the typed field that holds `t`'s type carries.
fn typed_len(t: &TensorProto) -> Option<u64> {
    use DataType as T;
    let n = match DataType::try_from(t.data_type()).ok()? {
        T::Float => t.float_data.len(),
        T::Complex64 => t.float_data.len() / 2,
        T::Int64 => t.int64_data.len(),
        T::Double => t.double_data.len(),
        T::Complex128 => t.double_data.len() / 2,
        T::Uint32 | T::Uint64 => t.uint64_data.len(),
        T::String => t.string_data.len(),
        T::Bool
        | T::Int8
        | T::Uint8
        | T::Int16
        | T::Uint16
        | T::Int32
        | T::Float16
        | T::Bfloat16 => t.int32_data.len(),
        _ => return None,
    };
    Some(n as u64)
}

fn check_tensor(t: &TensorProto) -> Result<(), String> {
    let name = t.name();
    let count = element_count(&t.dims).map_err(|e| format!("initializer `{name}`: {e}"))?;
    if t.data_location() == DataLocation::External {
        return Ok(());
    }
    let held = match (&t.raw_data, item_size(t.data_type())) {
        (Some(raw), Some(size)) => {
            let bytes = count.checked_mul(size);
            if bytes != Some(raw.len() as u64) {
                return Err(format!(
                    "initializer `{name}` has {} bytes of raw_data, but dims {:?} need {}",
                    raw.len(),
                    t.dims,
                    bytes.map_or("more than 2^64".into(), |b| b.to_string())
                ));
            }
            return Ok(());
        }
        (Some(_), None) => {
            return Err(format!(
                "initializer `{name}` has raw_data of data type {}, which has no fixed size",
                t.data_type()
            ))
        }
        (None, _) => typed_len(t),
    };
    match held {
        Some(n) if n == count => Ok(()),
        Some(n) => Err(format!(
            "initializer `{name}` holds {n} values, but dims {:?} need {count}",
            t.dims
        )),
        None => Err(format!(
            "initializer `{name}` has unsupported data type {}",
            t.data_type()
        )),
    }
}

/// Inputs (at least, at most) and outputs (at least) of the ops the quantizer and SmoothQuant read.
fn arity(op: &str) -> Option<(usize, usize, usize)> {
    Some(match op {
        "MatMul" | "Add" | "Mul" | "Sub" | "Div" => (2, 2, 1),
        "Gather" => (2, 2, 1),
        "LayerNormalization" => (2, 3, 1),
        "Conv" => (2, 3, 1),
        "Gemm" => (2, 3, 1),
        _ => return None,
    })
}

fn check_node(n: &NodeProto) -> Result<(), String> {
    let label = if n.name().is_empty() {
        n.output.first().map_or("(unnamed)", String::as_str)
    } else {
        n.name()
    };
    if n.output.is_empty() {
        return Err(format!("node `{label}` ({}) has no output", n.op_type()));
    }
    if let Some((lo, hi, outs)) = arity(n.op_type()) {
        if !(lo..=hi).contains(&n.input.len()) || n.output.len() < outs {
            return Err(format!(
                "node `{label}` ({}) has {} inputs and {} outputs ({lo}..={hi} inputs expected)",
                n.op_type(),
                n.input.len(),
                n.output.len()
            ));
        }
    }
    Ok(())
}

/// Every problem the first bad initializer or node shows, as one sentence.
pub fn check_model(model: &ModelProto) -> Result<(), String> {
    let Some(graph) = &model.graph else {
        return Ok(());
    };
    for t in &graph.initializer {
        check_tensor(t)?;
    }
    for n in &graph.node {
        check_node(n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::GraphProto;

    fn model(inits: Vec<TensorProto>, nodes: Vec<NodeProto>) -> ModelProto {
        ModelProto {
            graph: Some(GraphProto {
                initializer: inits,
                node: nodes,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn float(name: &str, dims: Vec<i64>, raw: usize) -> TensorProto {
        TensorProto {
            name: Some(name.into()),
            dims,
            data_type: Some(DataType::Float as i32),
            raw_data: Some(vec![0; raw]),
            ..Default::default()
        }
    }

    #[test]
    fn dims_and_data_lengths_must_agree() {
        assert!(check_model(&model(vec![float("w", vec![2, 3], 24)], vec![])).is_ok());
        assert!(check_model(&model(vec![float("e", vec![2, 0], 0)], vec![])).is_ok());
        for (dims, raw, says) in [
            (vec![-1, -4], 16, "negative"),
            (vec![i64::MAX, i64::MAX], 0, "overflow"),
            (vec![1 << 61, 4], 0, "need more than 2^64"),
            (
                vec![2, 3],
                20,
                "has 20 bytes of raw_data, but dims [2, 3] need 24",
            ),
        ] {
            let e = check_model(&model(vec![float("w", dims, raw)], vec![])).unwrap_err();
            assert!(e.contains("initializer `w`") && e.contains(says), "{e}");
        }
        let typed = TensorProto {
            raw_data: None,
            float_data: vec![1.0; 5],
            ..float("t", vec![2, 3], 0)
        };
        let e = check_model(&model(vec![typed], vec![])).unwrap_err();
        assert!(e.contains("holds 5 values, but dims [2, 3] need 6"), "{e}");
    }

    #[test]
    fn nodes_need_their_inputs_and_an_output() {
        let node = |op: &str, inputs: &[&str], outputs: &[&str]| NodeProto {
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert!(check_model(&model(vec![], vec![node("MatMul", &["a", "b"], &["y"])])).is_ok());
        let e = check_model(&model(vec![], vec![node("MatMul", &["a", "b"], &[])])).unwrap_err();
        assert!(e.contains("has no output"), "{e}");
        let e = check_model(&model(vec![], vec![node("MatMul", &["a"], &["y"])])).unwrap_err();
        assert!(e.contains("node `y` (MatMul) has 1 inputs"), "{e}");
    }
}
