//! ONNX protobuf model (generated from the official onnx.proto) and a small graph builder used by exporters.

pub mod proto {
    #![allow(clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

mod builder;
pub mod check;
mod io;
pub mod layers;

pub use builder::{value_info, Dim, GraphBuilder};
pub use io::{read_model, write_model, OnnxIoError};

/// Attribute constructors for `GraphBuilder::op`.
pub mod attr {
    pub use super::builder::{attr_float as float, attr_int as int, attr_ints as ints};
}
