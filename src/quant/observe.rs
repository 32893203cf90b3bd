//! Exposes the activations a static recipe quantizes as extra graph outputs, so running the float model
//! on calibration data yields them (through an Identity, so graph inputs can be observed too).
//!
//! Activations inside an `If`'s branches (optimum's merged decoder) come out through the `If`: each branch
//! gets an output per observed tensor of either branch, the branch that does not compute it giving an
//! empty tensor (which adds nothing to the statistics), and the `If`'s new outputs become the outer
//! graph's. `Loop` and `Scan` bodies are not observed: their outputs are per iteration.

use std::collections::HashMap;

use super::graph::{node, weight_matmuls_reading};
use super::QuantError;
use crate::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, type_proto::Value, AttributeProto,
    GraphProto, ModelProto, NodeProto, TensorProto,
};

pub const PREFIX: &str = "quantbench_observe/";

/// Exposes, as `PREFIX + name` outputs of the main graph, every distinct input of a weight MatMul in the
/// main graph and in `If` branches at any depth; returns them with their channel counts, in node order.
pub fn instrument(
    model: &mut ModelProto,
    ignored: &dyn Fn(&NodeProto) -> bool,
) -> Result<Vec<(String, usize)>, QuantError> {
    super::nested::hoist_initializers(model.graph.as_mut().ok_or(QuantError::NoGraph)?)?;
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let weights = std::mem::take(&mut graph.initializer);
    let mut observed = Vec::new();
    {
        let index: HashMap<&str, &TensorProto> = weights.iter().map(|t| (t.name(), t)).collect();
        observe_graph(graph, 0, &index, ignored, &mut observed);
    }
    graph.initializer = weights;
    Ok(observed)
}

/// Adds `PREFIX + name` outputs for `names` to the main graph.
pub fn expose(model: &mut ModelProto, names: &[(String, usize)]) -> Result<(), QuantError> {
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    for (name, _) in names {
        expose_in(graph, name);
    }
    Ok(())
}

fn expose_in(graph: &mut GraphProto, name: &str) {
    let out = format!("{PREFIX}{name}");
    graph.node.push(node(
        "Identity",
        format!("{out}_Identity"),
        vec![name.to_string()],
        vec![out.clone()],
    ));
    graph.output.push(any_float(&out));
}

/// A float tensor of any shape: no shape field at all (an empty one would mean a scalar).
fn any_float(name: &str) -> crate::onnx::proto::ValueInfoProto {
    let mut info = crate::onnx::value_info(name, DataType::Float, &[]);
    if let Some(Value::TensorType(t)) = info.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        t.shape = None;
    }
    info
}

/// Observes `graph`'s own weight MatMuls and its `If`s' branches; every observed tensor ends up as a
/// `PREFIX` output of `graph`.
fn observe_graph(
    graph: &mut GraphProto,
    depth: usize,
    weights: &HashMap<&str, &TensorProto>,
    ignored: &dyn Fn(&NodeProto) -> bool,
    observed: &mut Vec<(String, usize)>,
) {
    let mut here: Vec<(String, usize)> = Vec::new();
    for t in weight_matmuls_reading(graph, weights, ignored) {
        if !here.iter().any(|(a, _)| *a == t.activation) {
            here.push((t.activation, t.k));
        }
    }
    for (name, _) in &here {
        expose_in(graph, name);
    }
    observed.extend(here);

    let mut new_outputs = Vec::new();
    for n in graph.node.iter_mut().filter(|n| n.op_type() == "If") {
        let mut branches: Vec<(String, &mut GraphProto)> = n
            .attribute
            .iter_mut()
            .filter(|a| matches!(a.name(), "then_branch" | "else_branch"))
            .filter_map(|a| Some((a.name().to_string(), a.g.as_mut()?)))
            .collect();
        if branches.len() != 2 {
            continue;
        }
        let mut exposed: Vec<Vec<String>> = Vec::new();
        for (_, b) in branches.iter_mut() {
            let before = b.output.len();
            observe_graph(b, depth + 1, weights, ignored, observed);
            exposed.push(
                b.output[before..]
                    .iter()
                    .map(|o| o.name().to_string())
                    .collect(),
            );
        }
        let union = align_branches(&mut branches, &exposed, depth + 1);
        n.output.extend(union.iter().cloned());
        new_outputs.extend(union);
    }
    graph
        .output
        .extend(new_outputs.iter().map(|name| any_float(name)));
}

/// Makes both branches output every tensor either exposed (`exposed[i]`: branch i's own), in one order, and
/// returns those names for the If's new outputs. A branch's own outputs get a suffix (the depth and side,
/// so no scope repeats a name of one around it), since the If's outputs take the plain names; a branch
/// that does not compute a tensor outputs an empty one.
fn align_branches(
    branches: &mut [(String, &mut GraphProto)],
    exposed: &[Vec<String>],
    depth: usize,
) -> Vec<String> {
    let mut union: Vec<String> = Vec::new();
    for name in exposed.iter().flatten() {
        if !union.contains(name) {
            union.push(name.clone());
        }
    }
    if union.is_empty() {
        return union;
    }
    for ((side, b), own) in branches.iter_mut().zip(exposed) {
        let suffix = format!("@{depth}{side}");
        b.output.retain(|o| !own.iter().any(|x| x == o.name()));
        for name in &union {
            let local = format!("{name}{suffix}");
            if own.contains(name) {
                for m in b.node.iter_mut() {
                    for o in m.output.iter_mut().filter(|o| *o == name) {
                        o.clone_from(&local);
                    }
                }
            } else {
                b.node.push(empty_float(&local));
            }
            b.output.push(any_float(&local));
        }
    }
    union
}

/// A `Constant` making an empty float tensor called `name`.
fn empty_float(name: &str) -> NodeProto {
    let mut empty = node(
        "Constant",
        format!("{name}_empty"),
        vec![],
        vec![name.to_string()],
    );
    empty.attribute.push(AttributeProto {
        name: Some("value".into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(TensorProto {
            dims: vec![0],
            data_type: Some(DataType::Float as i32),
            ..Default::default()
        }),
        ..Default::default()
    });
    empty
}
