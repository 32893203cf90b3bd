//! Builds optimum's `decoder_model_merged.onnx` from a split decoder pair, the way optimum's
//! `merge_decoders` does: one `If` on `use_cache_branch`, the no-cache decoder in the else branch, the
//! with-past decoder in the then branch, weights shared in the outer graph.

use std::collections::HashMap;
use std::path::Path;

use quantbench::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto, NodeProto,
    TensorProto, ValueInfoProto,
};
use quantbench::onnx::{read_model, write_model, Dim, GraphBuilder};

fn rename_branch(
    g: &GraphProto,
    prefix: &str,
    outer_inputs: &[String],
    shared: &HashMap<String, String>,
) -> Vec<NodeProto> {
    let map = |n: &String| -> String {
        if n.is_empty() || outer_inputs.contains(n) {
            n.clone()
        } else if let Some(s) = shared.get(n) {
            s.clone()
        } else {
            format!("{prefix}/{n}")
        }
    };
    g.node
        .iter()
        .map(|node| NodeProto {
            input: node.input.iter().map(map).collect(),
            output: node.output.iter().map(map).collect(),
            name: node.name.as_ref().map(|n| format!("{prefix}/{n}")),
            ..node.clone()
        })
        .collect()
}

fn renamed(v: &ValueInfoProto, name: String) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name),
        ..v.clone()
    }
}

pub fn merge_folder(split: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    for f in ["encoder_model.onnx", "tokenizer.json", "config.json"] {
        std::fs::copy(split.join(f), out.join(f)).unwrap();
    }
    let no_past = read_model(&split.join("decoder_model.onnx")).unwrap();
    let with_past = read_model(&split.join("decoder_with_past_model.onnx")).unwrap();
    let (a, b) = (no_past.graph.unwrap(), with_past.graph.unwrap());

    // Initializers: identical name and bytes are shared; anything else is kept per branch.
    let mut outer_inits: Vec<TensorProto> = Vec::new();
    let mut shared_a = HashMap::new();
    let mut shared_b = HashMap::new();
    let b_by_name: HashMap<&str, &TensorProto> =
        b.initializer.iter().map(|t| (t.name(), t)).collect();
    for t in &a.initializer {
        match b_by_name.get(t.name()) {
            Some(other) if *other == t => {
                shared_a.insert(t.name().to_string(), t.name().to_string());
                shared_b.insert(t.name().to_string(), t.name().to_string());
                outer_inits.push(t.clone());
            }
            _ => {
                let n = format!("else/{}", t.name());
                shared_a.insert(t.name().to_string(), n.clone());
                outer_inits.push(TensorProto {
                    name: Some(n),
                    ..t.clone()
                });
            }
        }
    }
    for t in &b.initializer {
        if !shared_b.contains_key(t.name()) {
            let n = format!("then/{}", t.name());
            shared_b.insert(t.name().to_string(), n.clone());
            outer_inits.push(TensorProto {
                name: Some(n),
                ..t.clone()
            });
        }
    }

    let outer_inputs: Vec<String> = a
        .input
        .iter()
        .chain(&b.input)
        .map(|v| v.name().to_string())
        .collect();
    let outputs = a.output.clone(); // logits, present.* (decoder and encoder)

    let else_nodes = rename_branch(&a, "else", &outer_inputs, &shared_a);
    let else_graph = GraphProto {
        name: Some("no_cache".into()),
        node: else_nodes,
        output: outputs
            .iter()
            .map(|o| renamed(o, format!("else/{}", o.name())))
            .collect(),
        ..Default::default()
    };
    let mut then_nodes = rename_branch(&b, "then", &outer_inputs, &shared_b);
    for o in &outputs {
        if o.name().contains(".encoder.") {
            // The cache branch passes the cross-attention cache through, as optimum's merge does.
            then_nodes.push(NodeProto {
                op_type: Some("Identity".into()),
                input: vec![o.name().replace("present.", "past_key_values.")],
                output: vec![format!("then/{}", o.name())],
                ..Default::default()
            });
        }
    }
    let then_graph = GraphProto {
        name: Some("with_cache".into()),
        node: then_nodes,
        output: outputs
            .iter()
            .map(|o| renamed(o, format!("then/{}", o.name())))
            .collect(),
        ..Default::default()
    };
    let graph_attr = |name: &str, g: GraphProto| AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Graph as i32),
        g: Some(g),
        ..Default::default()
    };

    let mut builder = GraphBuilder::new();
    builder.input("use_cache_branch", DataType::Bool, &[Dim::Fixed(1)]);
    let mut model = builder.finish("merged_decoder", 17);
    let g = model.graph.as_mut().unwrap();
    for v in a.input.iter().chain(&b.input) {
        if !g.input.iter().any(|x| x.name == v.name) {
            g.input.push(v.clone());
        }
    }
    g.initializer = outer_inits;
    g.output = outputs.clone();
    g.node = vec![NodeProto {
        name: Some("optimum::if".into()),
        op_type: Some("If".into()),
        input: vec!["use_cache_branch".into()],
        output: outputs.iter().map(|o| o.name().to_string()).collect(),
        attribute: vec![
            graph_attr("then_branch", then_graph),
            graph_attr("else_branch", else_graph),
        ],
        ..Default::default()
    }];
    write_model(&model, &out.join("decoder_model_merged.onnx")).unwrap();
}
