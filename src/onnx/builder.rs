use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// One dimension of a graph input/output: fixed or named (symbolic).
#[derive(Debug, Clone)]
pub enum Dim {
    Fixed(i64),
    Named(&'static str),
}

/// Builds one ONNX graph node by node. Every intermediate value gets a unique name from a prefix and a counter.
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    counter: usize,
}

/// A typed graph input/output description.
pub fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            denotation: None,
            value: Some(match d {
                Dim::Fixed(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                Dim::Named(s) => tensor_shape_proto::dimension::Value::DimParam(s.to_string()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        ..Default::default()
    }
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, elem, dims));
        name.to_string()
    }

    pub fn output(&mut self, name: &str, elem: DataType, dims: &[Dim]) {
        self.outputs.push(value_info(name, elem, dims));
    }

    pub fn f32_init(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            name: Some(name.to_string()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Float as i32),
            raw_data: Some(raw),
            ..Default::default()
        });
        name.to_string()
    }

    pub fn i64_const(&mut self, data: &[i64]) -> String {
        let name = self.fresh("const_i64");
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            name: Some(name.clone()),
            dims: vec![data.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            raw_data: Some(raw),
            ..Default::default()
        });
        name
    }

    pub fn f32_scalar(&mut self, v: f32) -> String {
        let name = self.fresh("const_f32");
        self.initializers.push(TensorProto {
            name: Some(name.clone()),
            dims: vec![],
            data_type: Some(DataType::Float as i32),
            raw_data: Some(v.to_le_bytes().to_vec()),
            ..Default::default()
        });
        name
    }

    /// Adds a node with one output of a generated name, returned.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op_type.to_lowercase());
        self.op_into(op_type, inputs, attrs, &[&out]);
        out
    }

    /// Adds a node with a caller-chosen node name (what ignored scopes match) and one generated output.
    pub fn op_named(
        &mut self,
        name: &str,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        let out = self.fresh(&op_type.to_lowercase());
        self.op_into_named(name, op_type, inputs, attrs, &[&out]);
        out
    }

    /// Adds a node whose outputs are named by the caller (graph outputs, for instance).
    pub fn op_into(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        outputs: &[&str],
    ) {
        let name = self.fresh(&format!("node_{op_type}"));
        self.op_into_named(&name, op_type, inputs, attrs, outputs);
    }

    /// Adds a node with caller-chosen node and output names.
    pub fn op_into_named(
        &mut self,
        name: &str,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        outputs: &[&str],
    ) {
        self.nodes.push(NodeProto {
            name: Some(name.to_string()),
            op_type: Some(op_type.to_string()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..Default::default()
        });
    }

    pub fn finish(self, graph_name: &str, opset: i64) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            producer_name: Some("quantbench".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            graph: Some(GraphProto {
                name: Some(graph_name.into()),
                node: self.nodes,
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
