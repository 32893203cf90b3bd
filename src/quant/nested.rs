//! Rewrites that reach into nested graphs: an `If`'s branches (optimum's `decoder_model_merged.onnx` puts
//! the whole decoder, twice, inside one), a `Loop`'s or `Scan`'s body.
//!
//! Every rewrite is written for one graph whose weights are its own initializers. A nested graph reads its
//! weights from the outer scope instead, so each is handed to the rewrite as a model of its own holding
//! copies of the outer weights it reads; what the rewrite leaves (quantized weights, scales) goes back to
//! the outer graph, where both branches share it: a weight both branches quantize the same way is stored
//! once, one they change differently (bias correction, smoothing) is stored per branch under a new name.

use std::collections::{HashMap, HashSet};

use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, TensorProto};

use super::graph::{drop_unused_initializers, reads, subgraphs};
use super::QuantError;

/// Runs `rewrite` on the main graph of `model`, then on every graph nested in it (depth first, in node
/// order); returns each run's result in that order.
pub fn each_graph<R>(
    model: &mut ModelProto,
    mut rewrite: impl FnMut(&mut ModelProto) -> Result<R, QuantError>,
) -> Result<Vec<R>, QuantError> {
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    hoist_initializers(graph)?;
    let mut results = vec![rewrite(model)?];
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    if !graph.node.iter().any(|n| subgraphs(n).next().is_some()) {
        return Ok(results);
    }
    let mut scope = Scope {
        weights: std::mem::take(&mut graph.initializer),
        opsets: model.opset_import.clone(),
        ir_version: model.ir_version,
    };
    let visited = visit(&mut graph.node, &mut scope, &mut rewrite, &mut results);
    graph.initializer = std::mem::take(&mut scope.weights);
    model.opset_import = scope.opsets;
    visited?;
    drop_unused_initializers(graph);
    Ok(results)
}

/// What every nested graph sees of the model: its weights and opsets.
struct Scope {
    weights: Vec<TensorProto>,
    opsets: Vec<crate::onnx::proto::OperatorSetIdProto>,
    ir_version: Option<i64>,
}

fn subgraphs_mut(n: &mut NodeProto) -> impl Iterator<Item = &mut GraphProto> {
    n.attribute
        .iter_mut()
        .flat_map(|a| a.g.iter_mut().chain(a.graphs.iter_mut()))
}

fn visit<R>(
    nodes: &mut [NodeProto],
    scope: &mut Scope,
    rewrite: &mut impl FnMut(&mut ModelProto) -> Result<R, QuantError>,
    results: &mut Vec<R>,
) -> Result<(), QuantError> {
    for n in nodes.iter_mut() {
        for sub in subgraphs_mut(n) {
            let used: HashSet<String> = {
                let mut names = Vec::new();
                for m in &sub.node {
                    names.extend(reads(m));
                }
                names.extend(sub.output.iter().map(|o| o.name()));
                names.into_iter().map(str::to_string).collect()
            };
            let mut wrapper = ModelProto {
                ir_version: scope.ir_version,
                opset_import: scope.opsets.clone(),
                graph: Some(std::mem::take(sub)),
                ..Default::default()
            };
            let g = wrapper.graph.as_mut().expect("just set");
            g.initializer = scope
                .weights
                .iter()
                .filter(|t| used.contains(t.name()))
                .cloned()
                .collect();
            let result = rewrite(&mut wrapper);
            *sub = wrapper.graph.take().unwrap_or_default();
            let result = result?;
            for o in wrapper.opset_import {
                if !scope.opsets.iter().any(|s| s.domain() == o.domain()) {
                    scope.opsets.push(o);
                }
            }
            return_weights(sub, &mut scope.weights);
            results.push(result);
            visit(&mut sub.node, scope, rewrite, results)?;
        }
    }
    Ok(())
}

/// Moves a rewritten nested graph's initializers back to the outer scope: one equal to an outer tensor of
/// its name is dropped, one that differs is renamed (with every read of it in `sub`).
fn return_weights(sub: &mut GraphProto, outer: &mut Vec<TensorProto>) {
    let index: HashMap<String, usize> = outer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name().to_string(), i))
        .collect();
    let mut renames: HashMap<String, String> = HashMap::new();
    for mut t in std::mem::take(&mut sub.initializer) {
        match index.get(t.name()) {
            Some(&i) if outer[i] == t => {}
            Some(_) => {
                let mut fresh = format!("{}/{}", t.name(), sub.name());
                let mut k = 1;
                while index.contains_key(&fresh) || outer.iter().any(|o| o.name() == fresh) {
                    k += 1;
                    fresh = format!("{}/{}#{k}", t.name(), sub.name());
                }
                renames.insert(t.name().to_string(), fresh.clone());
                t.name = Some(fresh);
                outer.push(t);
            }
            None => outer.push(t),
        }
    }
    if !renames.is_empty() {
        rename_reads(sub, &renames);
    }
}

fn rename_reads(g: &mut GraphProto, renames: &HashMap<String, String>) {
    for n in &mut g.node {
        for x in &mut n.input {
            if let Some(r) = renames.get(x.as_str()) {
                *x = r.clone();
            }
        }
        for sub in subgraphs_mut(n) {
            rename_reads(sub, renames);
        }
    }
    for o in &mut g.output {
        if let Some(r) = renames.get(o.name()) {
            o.name = Some(r.clone());
        }
    }
}

/// Moves every nested graph's own initializers into the main graph (names are unique across scopes in
/// ONNX, so the nested graph still reads them), so every weight lives in one place.
pub(super) fn hoist_initializers(graph: &mut GraphProto) -> Result<(), QuantError> {
    let mut hoisted = Vec::new();
    for n in &mut graph.node {
        for sub in subgraphs_mut(n) {
            collect_initializers(sub, &mut hoisted);
        }
    }
    let mut names: HashSet<String> = graph
        .initializer
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    for t in hoisted {
        if !names.insert(t.name().to_string()) {
            return Err(QuantError::Tensor(format!(
                "initializer `{}` is defined in more than one scope",
                t.name()
            )));
        }
        graph.initializer.push(t);
    }
    Ok(())
}

fn collect_initializers(g: &mut GraphProto, out: &mut Vec<TensorProto>) {
    out.append(&mut g.initializer);
    for n in &mut g.node {
        for sub in subgraphs_mut(n) {
            collect_initializers(sub, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::{attribute_proto::AttributeType, AttributeProto, ValueInfoProto};
    use crate::quant::graph::{f32_tensor, node};

    fn branch(name: &str) -> GraphProto {
        GraphProto {
            name: Some(name.into()),
            node: vec![node(
                "MatMul",
                format!("{name}/mm"),
                vec!["x".into(), "w".into()],
                vec![format!("{name}/y")],
            )],
            output: vec![ValueInfoProto {
                name: Some(format!("{name}/y")),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn model() -> ModelProto {
        let attr = |name: &str, g: GraphProto| AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Graph as i32),
            g: Some(g),
            ..Default::default()
        };
        let mut iff = node("If", "if".into(), vec!["cond".into()], vec!["y".into()]);
        iff.attribute = vec![
            attr("then_branch", branch("then")),
            attr("else_branch", branch("else")),
        ];
        ModelProto {
            graph: Some(GraphProto {
                node: vec![iff],
                initializer: vec![f32_tensor("w", vec![2, 2], &[1.0, 2.0, 3.0, 4.0])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn inits(m: &ModelProto) -> Vec<&str> {
        let mut v: Vec<&str> = m
            .graph
            .as_ref()
            .unwrap()
            .initializer
            .iter()
            .map(|t| t.name())
            .collect();
        v.sort();
        v
    }

    fn weight_read_in(m: &ModelProto, side: usize) -> String {
        m.graph.as_ref().unwrap().node[0].attribute[side]
            .g
            .as_ref()
            .unwrap()
            .node[0]
            .input[1]
            .clone()
    }

    #[test]
    fn a_weight_both_branches_change_alike_is_stored_once() {
        let mut m = model();
        let runs = each_graph(&mut m, |sub| {
            let g = sub.graph.as_mut().unwrap();
            if g.node[0].op_type() != "MatMul" {
                return Ok(g.name().to_string());
            }
            if let Some(w) = g.initializer.iter().find(|t| t.name() == "w").cloned() {
                g.initializer.push(TensorProto {
                    name: Some("w_q".into()),
                    ..w
                });
                g.node[0].input[1] = "w_q".into();
                drop_unused_initializers(g);
            }
            Ok(g.name().to_string())
        })
        .unwrap();
        assert_eq!(runs, ["", "then", "else"]);
        assert_eq!(inits(&m), ["w_q"]);
        assert_eq!(weight_read_in(&m, 0), "w_q");
        assert_eq!(weight_read_in(&m, 1), "w_q");
    }

    #[test]
    fn a_weight_the_branches_change_differently_is_stored_per_branch() {
        let mut m = model();
        each_graph(&mut m, |sub| {
            let g = sub.graph.as_mut().unwrap();
            let side = match g.name() {
                "then" => 10.0,
                "else" => 20.0,
                _ => return Ok(()),
            };
            if let Some(w) = g.initializer.iter_mut().find(|t| t.name() == "w") {
                *w = f32_tensor("w", vec![2, 2], &[side; 4]);
            }
            Ok(())
        })
        .unwrap();
        // The original is read by neither any more.
        assert_eq!(inits(&m), ["w/else", "w/then"]);
        assert_eq!(weight_read_in(&m, 0), "w/then");
        assert_eq!(weight_read_in(&m, 1), "w/else");
    }
}
