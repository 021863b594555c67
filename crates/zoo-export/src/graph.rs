//! An ONNX graph under construction: named values, nodes of the standard operator set,
//! weights as initializers, documented inputs and outputs. The protobuf messages are
//! `onnx-protobuf`'s (generated from `onnx.proto`); nothing here encodes bytes by hand.

use anyhow::{Context, Result, ensure};
use burn::prelude::*;
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{Dimension, dimension};
use onnx_protobuf::type_proto;
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The operator set every exported graph imports (ONNX 1.12, 2022: what onnxruntime,
/// onnxruntime-web and tract all run).
pub const OPSET: i64 = 17;
/// The IR version of that operator set.
pub const IR_VERSION: i64 = 8;
/// The symbolic batch dimension of every input and output.
pub const BATCH: &str = "N";

/// A value of the graph (a node's output, an input or an initializer), by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value(pub(crate) String);

impl Value {
    /// The value's name in the graph.
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// One axis of an input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// The batch: any size, the same across inputs and outputs ([`BATCH`]).
    Batch,
    /// A fixed size.
    Fixed(usize),
}

/// The element type of an input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    /// 32-bit float.
    F32,
    /// 64-bit signed integer (class indices).
    I64,
}

impl Elem {
    fn onnx(self) -> DataType {
        match self {
            Elem::F32 => DataType::FLOAT,
            Elem::I64 => DataType::INT64,
        }
    }

    /// `float32` or `int64`, as runtimes name them.
    pub fn name(self) -> &'static str {
        match self {
            Elem::F32 => "float32",
            Elem::I64 => "int64",
        }
    }
}

/// A documented input or output of an exported graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    /// Its name in the graph.
    pub name: String,
    /// Its shape.
    pub dims: Vec<Dim>,
    /// Its element type.
    pub elem: Elem,
    /// What it holds (the prior, the range, the layout).
    pub doc: String,
}

impl Port {
    /// `[N, 100]`-style shape text.
    pub fn shape_text(&self) -> String {
        let d: Vec<String> = self
            .dims
            .iter()
            .map(|d| match d {
                Dim::Batch => BATCH.to_string(),
                Dim::Fixed(n) => n.to_string(),
            })
            .collect();
        format!("[{}]", d.join(", "))
    }
}

/// A graph being built. Layers are lowered by the functions of [`crate::layers`]; each names
/// its nodes and weights after the layer's path (`g.convs.1`), so an error or a file
/// inspected in Netron points at the layer.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<Port>,
    outputs: Vec<(Value, Port)>,
    metadata: Vec<(String, String)>,
    used: std::collections::HashSet<String>,
}

/// An attribute of a node.
pub enum Attr {
    /// One integer.
    Int(i64),
    /// Integers.
    Ints(Vec<i64>),
    /// One float.
    Float(f32),
    /// A string.
    Str(String),
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh value name from `base` (suffixed when taken).
    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.used.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// Declares an input.
    pub fn input(&mut self, name: &str, dims: Vec<Dim>, elem: Elem, doc: &str) -> Value {
        let name = self.fresh(name);
        self.inputs.push(Port {
            name: name.clone(),
            dims,
            elem,
            doc: doc.to_string(),
        });
        Value(name)
    }

    /// Declares `value` an output named `name`.
    pub fn output(&mut self, value: Value, name: &str, dims: Vec<Dim>, doc: &str) {
        let out = Value(self.fresh(name));
        self.node(
            "Identity",
            name,
            &[&value],
            std::slice::from_ref(&out),
            Vec::new(),
        );
        self.outputs.push((
            out.clone(),
            Port {
                name: out.0,
                dims,
                elem: Elem::F32,
                doc: doc.to_string(),
            },
        ));
    }

    /// A `key = value` entry of the file's metadata (`metadata_props`).
    pub fn metadata(&mut self, key: &str, value: impl ToString) {
        self.metadata.push((key.to_string(), value.to_string()));
    }

    /// A float initializer holding `tensor`.
    pub fn weight<const D: usize>(&mut self, name: &str, tensor: Tensor<D>) -> Result<Value> {
        let dims = tensor.dims();
        let data: Vec<f32> = tensor
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .with_context(|| format!("reading the weights of {name}"))?;
        Ok(self.floats(name, &dims, data))
    }

    /// A float initializer of `dims` holding `data`.
    pub fn floats(&mut self, name: &str, dims: &[usize], data: Vec<f32>) -> Value {
        let name = self.fresh(name);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::FLOAT as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        Value(name)
    }

    /// An int64 initializer (shapes, pads, indices).
    pub fn ints(&mut self, name: &str, data: &[i64]) -> Value {
        let name = self.fresh(name);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: vec![data.len() as i64],
            data_type: DataType::INT64 as i32,
            int64_data: data.to_vec(),
            ..Default::default()
        });
        Value(name)
    }

    /// A node of the standard domain with one output named after `name`.
    pub fn op(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&Value],
        attrs: Vec<(&str, Attr)>,
    ) -> Value {
        let out = Value(self.fresh(name));
        self.node(op, name, inputs, std::slice::from_ref(&out), attrs);
        out
    }

    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&Value],
        outputs: &[Value],
        attrs: Vec<(&str, Attr)>,
    ) {
        let node_name = self.fresh(&format!("{name}/{op}"));
        self.nodes.push(NodeProto {
            name: node_name,
            op_type: op.to_string(),
            input: inputs.iter().map(|v| v.0.clone()).collect(),
            output: outputs.iter().map(|v| v.0.clone()).collect(),
            attribute: attrs.into_iter().map(|(k, a)| attribute(k, a)).collect(),
            ..Default::default()
        });
    }

    /// The finished model: the graph named `name`, documented by `doc`.
    pub fn finish(self, name: &str, doc: &str) -> Result<OnnxModel> {
        ensure!(
            !self.outputs.is_empty(),
            "the exported graph {name} has no output"
        );
        let info = |p: &Port| ValueInfoProto {
            name: p.name.clone(),
            doc_string: p.doc.clone(),
            type_: Some(tensor_type(p)).into(),
            ..Default::default()
        };
        let graph = GraphProto {
            name: name.to_string(),
            node: self.nodes,
            initializer: self.initializers,
            input: self.inputs.iter().map(info).collect(),
            output: self.outputs.iter().map(|(_, p)| info(p)).collect(),
            doc_string: doc.to_string(),
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
                ..Default::default()
            }],
            producer_name: "zoo".to_string(),
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
            doc_string: doc.to_string(),
            graph: Some(graph).into(),
            metadata_props: self
                .metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: k.clone(),
                    value: v.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        Ok(OnnxModel {
            inputs: self.inputs,
            outputs: self.outputs.into_iter().map(|(_, p)| p).collect(),
            metadata: self.metadata,
            proto: model,
        })
    }
}

fn tensor_type(p: &Port) -> TypeProto {
    let dim = |d: &Dim| Dimension {
        value: Some(match d {
            Dim::Batch => dimension::Value::DimParam(BATCH.to_string()),
            Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
        }),
        ..Default::default()
    };
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: p.elem.onnx() as i32,
            shape: Some(TensorShapeProto {
                dim: p.dims.iter().map(dim).collect(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn attribute(name: &str, a: Attr) -> AttributeProto {
    let mut p = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    let kind = match a {
        Attr::Int(i) => {
            p.i = i;
            AttributeType::INT
        }
        Attr::Ints(v) => {
            p.ints = v;
            AttributeType::INTS
        }
        Attr::Float(f) => {
            p.f = f;
            AttributeType::FLOAT
        }
        Attr::Str(s) => {
            p.s = s.into_bytes();
            AttributeType::STRING
        }
    };
    p.type_ = kind.into();
    p
}

/// A finished ONNX model and what its inputs and outputs mean.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    /// The inputs, in order.
    pub inputs: Vec<Port>,
    /// The outputs, in order.
    pub outputs: Vec<Port>,
    /// The file's `metadata_props`.
    pub metadata: Vec<(String, String)>,
    /// The protobuf message.
    pub proto: ModelProto,
}

impl OnnxModel {
    /// The `.onnx` file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.proto
            .write_to_bytes()
            .context("encoding the ONNX model")
    }

    /// Operator types used, each once, sorted.
    pub fn operators(&self) -> Vec<String> {
        let mut ops: Vec<String> = self
            .proto
            .graph
            .node
            .iter()
            .map(|n| n.op_type.clone())
            .collect();
        ops.sort();
        ops.dedup();
        ops
    }

    /// Float parameters stored as initializers.
    pub fn parameters(&self) -> usize {
        self.proto
            .graph
            .initializer
            .iter()
            .filter(|t| t.data_type == DataType::FLOAT as i32)
            .map(|t| t.dims.iter().product::<i64>() as usize)
            .sum()
    }

    /// A metadata entry.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
