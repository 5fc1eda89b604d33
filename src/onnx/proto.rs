//! The few protobuf messages an ONNX file of a feed-forward graph needs, written by hand: a
//! message is a run of tagged fields (varints and length-delimited bytes; field numbers from
//! `onnx/onnx.proto`).

/// A protobuf message being written: fields appended in any order (readers accept that).
#[derive(Default)]
pub(super) struct Pb(pub(super) Vec<u8>);

impl Pb {
    pub(super) fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    /// Wire type 0. Negative int64s are written as their two's complement (ten bytes).
    pub(super) fn varint(&mut self, field: u32, v: u64) {
        self.raw_varint((field as u64) << 3);
        self.raw_varint(v);
    }
    /// Wire type 2.
    pub(super) fn bytes(&mut self, field: u32, b: &[u8]) {
        self.raw_varint(((field as u64) << 3) | 2);
        self.raw_varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    pub(super) fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }
    pub(super) fn message(&mut self, field: u32, m: &Pb) {
        self.bytes(field, &m.0);
    }
    /// Wire type 5.
    pub(super) fn float(&mut self, field: u32, v: f32) {
        self.raw_varint(((field as u64) << 3) | 5);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

// TensorProto.DataType
pub(super) const FLOAT: u64 = 1;
pub(super) const INT64: u64 = 7;

pub(super) fn tensor_proto(name: &str, dims: &[i64], data_type: u64, raw: &[u8]) -> Pb {
    let mut t = Pb::default();
    for &d in dims {
        t.varint(1, d as u64);
    }
    t.varint(2, data_type);
    t.string(8, name);
    t.bytes(9, raw);
    t
}

pub(super) enum Dim {
    Value(i64),
    Param(&'static str),
}

pub(super) fn value_info(name: &str, dims: &[Dim]) -> Pb {
    let mut shape = Pb::default();
    for d in dims {
        let mut dim = Pb::default();
        match d {
            Dim::Value(v) => dim.varint(1, *v as u64),
            Dim::Param(p) => dim.string(2, p),
        }
        shape.message(1, &dim);
    }
    let mut tensor = Pb::default();
    tensor.varint(1, FLOAT);
    tensor.message(2, &shape);
    let mut ty = Pb::default();
    ty.message(1, &tensor);
    let mut info = Pb::default();
    info.string(1, name);
    info.message(2, &ty);
    info
}

/// AttributeProto with its `type` set (AttributeType: FLOAT 1, INT 2, INTS 7).
pub(super) struct Attr(pub(super) Pb);

impl Attr {
    pub(super) fn int(name: &str, v: i64) -> Self {
        let mut a = Pb::default();
        a.string(1, name);
        a.varint(3, v as u64);
        a.varint(20, 2);
        Attr(a)
    }
    pub(super) fn ints(name: &str, v: &[usize]) -> Self {
        let mut a = Pb::default();
        a.string(1, name);
        for &x in v {
            a.varint(8, x as u64);
        }
        a.varint(20, 7);
        Attr(a)
    }
    pub(super) fn float(name: &str, v: f32) -> Self {
        let mut a = Pb::default();
        a.string(1, name);
        a.float(2, v);
        a.varint(20, 1);
        Attr(a)
    }
}

pub(super) struct Node {
    pub(super) op: &'static str,
    pub(super) inputs: Vec<String>,
    pub(super) output: String,
    pub(super) attrs: Vec<Attr>,
}

impl Node {
    pub(super) fn encode(&self) -> Pb {
        let mut n = Pb::default();
        for i in &self.inputs {
            n.string(1, i);
        }
        n.string(2, &self.output);
        n.string(3, &format!("{}_{}", self.op, self.output));
        n.string(4, self.op);
        for a in &self.attrs {
            n.message(5, &a.0);
        }
        n
    }
}
