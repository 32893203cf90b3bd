//! Exposes the activations a static recipe quantizes as extra graph outputs, so running the float model
//! on calibration data yields them (through an Identity, so graph inputs can be observed too).

use super::graph::{node, weight_matmuls};
use super::QuantError;
use crate::onnx::proto::{tensor_proto::DataType, type_proto::Value, ModelProto, NodeProto};

pub const PREFIX: &str = "quantbench_observe/";

/// (activation, channels) for every distinct input of a weight MatMul, in node order.
pub fn activations(
    model: &ModelProto,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Result<Vec<(String, usize)>, QuantError> {
    let graph = model.graph.as_ref().ok_or(QuantError::NoGraph)?;
    let mut out: Vec<(String, usize)> = Vec::new();
    for t in weight_matmuls(graph, ignored) {
        if !out.iter().any(|(a, _)| *a == t.activation) {
            out.push((t.activation, t.k));
        }
    }
    Ok(out)
}

/// Adds `PREFIX + name` outputs for `names`.
pub fn expose(model: &mut ModelProto, names: &[(String, usize)]) -> Result<(), QuantError> {
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    for (name, _) in names {
        let out = format!("{PREFIX}{name}");
        graph.node.push(node(
            "Identity",
            format!("{out}_Identity"),
            vec![name.clone()],
            vec![out.clone()],
        ));
        // A float tensor of any shape: no shape field at all (an empty one would mean a scalar).
        let mut info = crate::onnx::value_info(&out, DataType::Float, &[]);
        if let Some(Value::TensorType(t)) = info.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            t.shape = None;
        }
        graph.output.push(info);
    }
    Ok(())
}
