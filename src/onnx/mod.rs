//! ONNX export of the score network, so that other runtimes (ONNX Runtime Web in the benchmark
//! page) can run the very same network with the very same weights.
//!
//! The file is written by hand: ONNX is protobuf, and the handful of messages a feed-forward graph
//! needs (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto, AttributeProto; field
//! numbers from `onnx/onnx.proto`) are a few length-delimited fields each. Opset 17.
//!
//! The graph computes the raw network output `net(x, t)` ([B, C, H, W] from x [B, C, H, W] and
//! t [B], B free), like [`ScoreNet::forward`]; the score is `net / σ(t)` with σ from the model
//! card's SDE, as everywhere else. Operator by operator it follows the Burn forward pass, in the
//! same order of floating-point operations where ONNX allows:
//!
//! - Fourier features: `Mul(Mul(t[B,1], W[1,E/2]), 2π)`, `Sin`, `Cos`, `Concat`;
//! - dense layers: `Gemm` (Burn stores `[in, out]`, which is Gemm's B without transposition);
//! - SiLU: `Mul(x, Sigmoid(x))`;
//! - GroupNorm(G groups): `Reshape [B, G, −1]` → `InstanceNormalization` (unit scale, zero bias,
//!   same ε; population variance, as Burn) → `Reshape [B, C, H, W]` → `Mul γ` → `Add β`;
//! - convolutions: `Conv` / `ConvTranspose` with the same pads, strides and `output_padding`
//!   (weights are laid out as ONNX expects: [out, in, k, k] and [in, out, k, k]).

use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::module::Param;
use burn::nn::{GroupNorm, Linear, PaddingConfig2d};
use burn::prelude::*;

mod proto;

use proto::{Attr, Dim, FLOAT, INT64, Node, Pb, tensor_proto, value_info};

use crate::nn::ncsn::{ScoreNet, ScoreNetConfig};
use crate::nn::unet::{Attention, ResBlock, UNet, UNetConfig};

/// ONNX IR version 8 with the default-domain opset 17 (ONNX 1.12): supported by every current
/// runtime, and new enough for everything used here.
pub const IR_VERSION: u64 = 8;
pub const OPSET: u64 = 17;

/// Why a network could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("layer {layer}: {reason}")]
    Unsupported { layer: String, reason: String },
    #[error("tensor {name}: could not be read back as f32 ({reason})")]
    Data { name: String, reason: String },
}

/// Writes `net` (built from `config`) as an ONNX model: inputs `x` [B, C, H, W] and `t` [B]
/// (float32), output `net` [B, C, H, W].
pub fn export(net: &ScoreNet, config: &ScoreNetConfig, producer_version: &str) -> Result<Vec<u8>, ExportError> {
    let mut g = Graph::default();
    let [c, h, w] = [config.channels as i64, config.height as i64, config.width as i64];

    // Time embedding.
    let freqs = net.fourier.val();
    let half = freqs.dims()[0];
    let freqs = g.initializer("fourier.W", &[1, half as i64], f32s("fourier", freqs)?);
    let t_col = g.reshape("t", &[-1, 1]);
    let two_pi = g.initializer("two_pi", &[], vec![(2.0 * std::f64::consts::PI) as f32]);
    let tw = g.node("Mul", &[&t_col, &freqs], vec![]);
    let proj = g.node("Mul", &[&tw, &two_pi], vec![]);
    let sin = g.node("Sin", &[&proj], vec![]);
    let cos = g.node("Cos", &[&proj], vec![]);
    let features = g.node("Concat", &[&sin, &cos], vec![Attr::int("axis", 1)]);
    let dense = g.linear("embed", &net.embed, &features)?;
    let emb = g.silu(&dense);

    // Encoder.
    let sizes: Vec<[i64; 2]> = crate::nn::layers::level_sizes(config.height, config.width, config.widths.len()).into_iter().map(|[a, b]| [a as i64, b as i64]).collect();
    let mut skips = Vec::new();
    let mut x = "x".to_string();
    for (i, block) in net.down.iter().enumerate() {
        let name = format!("down.{i}");
        let conv = g.conv(&name, &block.conv, &x)?;
        x = g.condition(&name, conv, &emb, &block.time, &block.norm, sizes[i])?;
        skips.push(x.clone());
    }
    skips.pop();
    // Decoder, deepest first.
    for (j, block) in net.up.iter().enumerate() {
        let name = format!("up.{j}");
        let level = config.widths.len() - 2 - j;
        let conv = g.conv_transpose(&name, &block.conv, &x)?;
        let h = g.condition(&name, conv, &emb, &block.time, &block.norm, sizes[level])?;
        x = g.node("Concat", &[&h, &skips.pop().expect("one skip per level")], vec![Attr::int("axis", 1)]);
    }
    g.conv("out", &net.out, &x)?;
    g.nodes.last_mut().expect("the output conv was just added").output = "net".into();

    let image = [Dim::Param("batch"), Dim::Value(c), Dim::Value(h), Dim::Value(w)];
    Ok(g.model("scorefield_score_net", &[("x", &image), ("t", &[Dim::Param("batch")])], ("net", &image), producer_version))
}

fn f32s<const D: usize>(name: &str, tensor: Tensor<D>) -> Result<Vec<f32>, ExportError> {
    tensor.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| ExportError::Data { name: name.into(), reason: format!("{e:?}") })
}

/// Kernel size, stride, dilation, groups and ONNX pads ([top, left, bottom, right]) of a 2-D
/// (transposed) convolution.
struct ConvGeometry {
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    pads: [usize; 4],
}

/// Nodes in topological order (each is appended after its inputs exist) and the initializers.
#[derive(Default)]
struct Graph {
    nodes: Vec<Node>,
    initializers: Vec<Pb>,
}

impl Graph {
    /// Appends a node and returns the name of its (single) output.
    fn node(&mut self, op: &'static str, inputs: &[&str], attrs: Vec<Attr>) -> String {
        let output = format!("v{}", self.nodes.len());
        self.nodes.push(Node { op, inputs: inputs.iter().map(|s| s.to_string()).collect(), output: output.clone(), attrs });
        output
    }

    fn initializer(&mut self, name: &str, dims: &[i64], values: Vec<f32>) -> String {
        debug_assert_eq!(dims.iter().product::<i64>() as usize, values.len());
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(tensor_proto(name, dims, FLOAT, &raw));
        name.to_string()
    }

    /// `Reshape(input, shape)`; 0 in `shape` keeps that axis of the input, −1 infers one.
    fn reshape(&mut self, input: &str, shape: &[i64]) -> String {
        let name = format!("shape{}", self.initializers.len());
        let raw: Vec<u8> = shape.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(tensor_proto(&name, &[shape.len() as i64], INT64, &raw));
        self.node("Reshape", &[input, &name], vec![])
    }

    fn silu(&mut self, x: &str) -> String {
        let s = self.node("Sigmoid", &[x], vec![]);
        self.node("Mul", &[x, &s], vec![])
    }

    /// `x W + b` with W stored [in, out].
    fn linear(&mut self, name: &str, layer: &Linear, x: &str) -> Result<String, ExportError> {
        let [d_in, d_out] = layer.weight.dims();
        let w = self.initializer(&format!("{name}.weight"), &[d_in as i64, d_out as i64], f32s(name, layer.weight.val())?);
        let bias = layer.bias.as_ref().ok_or_else(|| unsupported(name, "a dense layer without bias"))?;
        let b = self.initializer(&format!("{name}.bias"), &[d_out as i64], f32s(name, bias.val())?);
        Ok(self.node("Gemm", &[x, &w, &b], vec![]))
    }

    fn conv(&mut self, name: &str, layer: &Conv2d, x: &str) -> Result<String, ExportError> {
        let (top, left, bottom, right) = match layer.padding {
            PaddingConfig2d::Explicit(top, left, bottom, right) => (top, left, bottom, right),
            PaddingConfig2d::Valid => (0, 0, 0, 0),
            _ => return Err(unsupported(name, "only explicit or no padding is exported")),
        };
        let out_channels = layer.weight.dims()[0];
        let geometry = ConvGeometry { kernel: layer.kernel_size, stride: layer.stride, dilation: layer.dilation, groups: layer.groups, pads: [top, left, bottom, right] };
        self.conv_node("Conv", name, x, &layer.weight, layer.bias.as_ref(), out_channels, geometry, vec![])
    }

    fn conv_transpose(&mut self, name: &str, layer: &ConvTranspose2d, x: &str) -> Result<String, ExportError> {
        let out_channels = layer.weight.dims()[1] * layer.groups;
        let [ph, pw] = layer.padding;
        let geometry = ConvGeometry { kernel: layer.kernel_size, stride: layer.stride, dilation: layer.dilation, groups: layer.groups, pads: [ph, pw, ph, pw] };
        self.conv_node("ConvTranspose", name, x, &layer.weight, layer.bias.as_ref(), out_channels, geometry, vec![Attr::ints("output_padding", &layer.padding_out)])
    }

    /// A `Conv`/`ConvTranspose` node: weights (laid out as ONNX expects), the optional bias of
    /// `out_channels` values, and the attributes both share.
    #[allow(clippy::too_many_arguments)]
    fn conv_node(
        &mut self,
        op: &'static str,
        name: &str,
        x: &str,
        weight: &Param<Tensor<4>>,
        bias: Option<&Param<Tensor<1>>>,
        out_channels: usize,
        g: ConvGeometry,
        extra: Vec<Attr>,
    ) -> Result<String, ExportError> {
        let dims = weight.dims().map(|d| d as i64);
        let mut inputs = vec![x.to_string(), self.initializer(&format!("{name}.weight"), &dims, f32s(name, weight.val())?)];
        if let Some(b) = bias {
            inputs.push(self.initializer(&format!("{name}.bias"), &[out_channels as i64], f32s(name, b.val())?));
        }
        let mut attrs = vec![
            Attr::ints("kernel_shape", &g.kernel),
            Attr::ints("strides", &g.stride),
            Attr::ints("dilations", &g.dilation),
            Attr::int("group", g.groups as i64),
            Attr::ints("pads", &g.pads),
        ];
        attrs.extend(extra);
        Ok(self.node(op, &inputs.iter().map(String::as_str).collect::<Vec<_>>(), attrs))
    }

    /// `SiLU(GroupNorm(h + dense(emb)))`, the block tail of [`crate::model`].
    fn condition(&mut self, name: &str, h: String, emb: &str, time: &Linear, norm: &GroupNorm, size: [i64; 2]) -> Result<String, ExportError> {
        let channels = norm.num_channels as i64;
        let bias = self.linear(&format!("{name}.time"), time, emb)?;
        let bias = self.reshape(&bias, &[0, channels, 1, 1]);
        let h = self.node("Add", &[&h, &bias], vec![]);
        let y = self.group_norm(&format!("{name}.norm"), norm, &h, size)?;
        Ok(self.silu(&y))
    }

    /// GroupNorm as Reshape [B, G, −1] → InstanceNormalization (unit scale, zero bias) → Reshape
    /// back → per-channel γ, β.
    fn group_norm(&mut self, name: &str, norm: &GroupNorm, x: &str, [height, width]: [i64; 2]) -> Result<String, ExportError> {
        let channels = norm.num_channels as i64;
        let groups = norm.num_groups as i64;
        let grouped = self.reshape(x, &[0, groups, -1]);
        let ones = self.initializer(&format!("{name}.unit_scale"), &[groups], vec![1.0; groups as usize]);
        let zeros = self.initializer(&format!("{name}.zero_bias"), &[groups], vec![0.0; groups as usize]);
        let normed = self.node("InstanceNormalization", &[&grouped, &ones, &zeros], vec![Attr::float("epsilon", norm.epsilon as f32)]);
        let mut y = self.reshape(&normed, &[0, channels, height, width]);
        if norm.affine {
            let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta) else {
                return Err(unsupported(name, "affine GroupNorm without γ and β"));
            };
            let gamma = self.initializer(&format!("{name}.gamma"), &[channels, 1, 1], f32s(name, gamma.val())?);
            let beta = self.initializer(&format!("{name}.beta"), &[channels, 1, 1], f32s(name, beta.val())?);
            y = self.node("Mul", &[&y, &gamma], vec![]);
            y = self.node("Add", &[&y, &beta], vec![]);
        }
        Ok(y)
    }

    /// A scalar constant.
    fn scalar(&mut self, name: &str, v: f32) -> String {
        self.initializer(name, &[], vec![v])
    }

    /// [`ResBlock::forward`]: the affine layer's [E, 2C] weights are split into the scale and
    /// shift halves here, so that the graph needs no Split node.
    fn res_block(&mut self, name: &str, block: &ResBlock, x: &str, emb: &str, size: [i64; 2]) -> Result<String, ExportError> {
        let h = self.group_norm(&format!("{name}.norm0"), &block.norm0, x, size)?;
        let h = self.silu(&h);
        let h = self.conv(&format!("{name}.conv0"), &block.conv0, &h)?;
        let c = block.conv0.weight.dims()[0];
        let w = f32s(name, block.affine.weight.val())?; // [E, 2C] row-major
        let b = f32s(name, block.affine.bias.as_ref().ok_or_else(|| unsupported(name, "an affine layer without bias"))?.val())?;
        let e = w.len() / (2 * c);
        let half = |offset: usize| -> (Vec<f32>, Vec<f32>) { ((0..e).flat_map(|row| w[row * 2 * c + offset..row * 2 * c + offset + c].iter().copied()).collect(), b[offset..offset + c].to_vec()) };
        let mut halves = Vec::new();
        for (part, offset) in [("scale", 0), ("shift", c)] {
            let (wp, bp) = half(offset);
            let wn = self.initializer(&format!("{name}.affine.{part}.weight"), &[e as i64, c as i64], wp);
            let bn = self.initializer(&format!("{name}.affine.{part}.bias"), &[c as i64], bp);
            let v = self.node("Gemm", &[emb, &wn, &bn], vec![]);
            halves.push(self.reshape(&v, &[0, c as i64, 1, 1]));
        }
        let one = self.scalar(&format!("{name}.one"), 1.0);
        let scale = self.node("Add", &[&halves[0], &one], vec![]);
        let h = self.group_norm(&format!("{name}.norm1"), &block.norm1, &h, size)?;
        let h = self.node("Mul", &[&h, &scale], vec![]);
        let h = self.node("Add", &[&h, &halves[1]], vec![]);
        let h = self.silu(&h);
        let h = self.conv(&format!("{name}.conv1"), &block.conv1, &h)?;
        let skip = match &block.skip {
            Some(conv) => self.conv(&format!("{name}.skip"), conv, x)?,
            None => x.to_string(),
        };
        let sum = self.node("Add", &[&h, &skip], vec![]);
        let r = self.scalar(&format!("{name}.skip_scale"), std::f32::consts::FRAC_1_SQRT_2);
        Ok(self.node("Mul", &[&sum, &r], vec![]))
    }

    /// [`Attention::forward`]: qkv [B, 3C, H, W] → [B, 3, heads, d, HW] → q, k, v by Gather →
    /// softmax(qᵀk/√d) → v·wᵀ → [B, C, H, W] → projection, residual, 1/√2.
    fn attention(&mut self, name: &str, attn: &Attention, x: &str, [height, width]: [i64; 2]) -> Result<String, ExportError> {
        let c = attn.qkv.weight.dims()[1] as i64;
        let heads = attn.heads as i64;
        let d = c / heads;
        let n = self.group_norm(&format!("{name}.norm"), &attn.norm, x, [height, width])?;
        let qkv = self.conv(&format!("{name}.qkv"), &attn.qkv, &n)?;
        let qkv = self.reshape(&qkv, &[0, 3, heads, d, height * width]);
        let mut parts = Vec::new();
        for (i, part) in ["q", "k", "v"].into_iter().enumerate() {
            let index = format!("{name}.{part}_index");
            self.initializers.push(tensor_proto(&index, &[], INT64, &(i as i64).to_le_bytes()));
            parts.push(self.node("Gather", &[&qkv, &index], vec![Attr::int("axis", 1)])); // [B, heads, d, HW]
        }
        let qt = self.node("Transpose", &[&parts[0]], vec![Attr::ints("perm", &[0, 1, 3, 2])]); // [B, heads, HW, d]
        let logits = self.node("MatMul", &[&qt, &parts[1]], vec![]); // [B, heads, HW, HW]
        let inv = self.scalar(&format!("{name}.inv_sqrt_d"), 1.0 / (d as f32).sqrt());
        let logits = self.node("Mul", &[&logits, &inv], vec![]);
        let weights = self.node("Softmax", &[&logits], vec![Attr::int("axis", -1)]);
        let wt = self.node("Transpose", &[&weights], vec![Attr::ints("perm", &[0, 1, 3, 2])]);
        let out = self.node("MatMul", &[&parts[2], &wt], vec![]); // [B, heads, d, HW]
        let out = self.reshape(&out, &[0, c, height, width]);
        let out = self.conv(&format!("{name}.proj"), &attn.proj, &out)?;
        let sum = self.node("Add", &[x, &out], vec![]);
        let r = self.scalar(&format!("{name}.skip_scale"), std::f32::consts::FRAC_1_SQRT_2);
        Ok(self.node("Mul", &[&sum, &r], vec![]))
    }
}

/// Writes the residual U-Net F as an ONNX model: inputs `x` [B, C, H, W] (already scaled by
/// c_in) and `c_noise` [B], output `F` [B, C, H, W]. The EDM coefficients are applied outside,
/// as [`crate::model::ScoreModel::network_output`] does.
pub fn export_unet(net: &UNet, config: &UNetConfig, producer_version: &str) -> Result<Vec<u8>, ExportError> {
    let mut g = Graph::default();
    let [c, h, w] = [config.channels as i64, config.height as i64, config.width as i64];
    let sizes: Vec<[i64; 2]> = config.level_sizes().into_iter().map(|[a, b]| [a as i64, b as i64]).collect();

    // Noise embedding: [cos 2π c W, sin 2π c W] → Gemm → SiLU → Gemm → SiLU.
    let freqs = net.fourier.val();
    let half = freqs.dims()[0];
    let freqs = g.initializer("fourier.W", &[1, half as i64], f32s("fourier", freqs)?);
    let col = g.reshape("c_noise", &[-1, 1]);
    let two_pi = g.scalar("two_pi", (2.0 * std::f64::consts::PI) as f32);
    let cw = g.node("Mul", &[&col, &freqs], vec![]);
    let proj = g.node("Mul", &[&cw, &two_pi], vec![]);
    let cos = g.node("Cos", &[&proj], vec![]);
    let sin = g.node("Sin", &[&proj], vec![]);
    let features = g.node("Concat", &[&cos, &sin], vec![Attr::int("axis", 1)]);
    let e0 = g.linear("map0", &net.map0, &features)?;
    let e0 = g.silu(&e0);
    let e1 = g.linear("map1", &net.map1, &e0)?;
    let emb = g.silu(&e1);

    let levels = net.encoder.len();
    let mut x = g.conv("conv_in", &net.conv_in, "x")?;
    let mut skips = Vec::new();
    for i in 0..levels {
        if i > 0 {
            x = g.conv(&format!("down.{}", i - 1), &net.down[i - 1], &x)?;
        }
        x = g.res_block(&format!("encoder.{i}"), &net.encoder[i], &x, &emb, sizes[i])?;
        if i == levels - 1 {
            x = g.attention("enc_attn", &net.enc_attn, &x, sizes[i])?;
        }
        skips.push(x.clone());
    }
    for i in (0..levels).rev() {
        let skip = skips.pop().expect("one skip per level");
        let cat = g.node("Concat", &[&x, &skip], vec![Attr::int("axis", 1)]);
        x = g.res_block(&format!("decoder.{i}"), &net.decoder[i], &cat, &emb, sizes[i])?;
        if i == levels - 1 {
            x = g.attention("dec_attn", &net.dec_attn, &x, sizes[i])?;
        }
        if i > 0 {
            x = g.conv_transpose(&format!("up.{}", i - 1), &net.up[i - 1], &x)?;
        }
    }
    let y = g.group_norm("out_norm", &net.out_norm, &x, sizes[0])?;
    let y = g.silu(&y);
    g.conv("out_conv", &net.out_conv, &y)?;
    g.nodes.last_mut().expect("the output conv was just added").output = "F".into();
    let image = [Dim::Param("batch"), Dim::Value(c), Dim::Value(h), Dim::Value(w)];
    Ok(g.model("scorefield_edm_unet", &[("x", &image), ("c_noise", &[Dim::Param("batch")])], ("F", &image), producer_version))
}

impl Graph {
    /// The ModelProto around this graph.
    fn model(&self, name: &str, inputs: &[(&str, &[Dim])], output: (&str, &[Dim]), producer_version: &str) -> Vec<u8> {
        let mut graph = Pb::default();
        for node in &self.nodes {
            graph.message(1, &node.encode());
        }
        graph.string(2, name);
        for init in &self.initializers {
            graph.message(5, init);
        }
        for (input, dims) in inputs {
            graph.message(11, &value_info(input, dims));
        }
        graph.message(12, &value_info(output.0, output.1));
        let mut opset = Pb::default();
        opset.string(1, "");
        opset.varint(2, OPSET);
        let mut model = Pb::default();
        model.varint(1, IR_VERSION);
        model.string(2, "scorefield");
        model.string(3, producer_version);
        model.message(7, &graph);
        model.message(8, &opset);
        model.0
    }
}

fn unsupported(layer: &str, reason: &str) -> ExportError {
    ExportError::Unsupported { layer: layer.into(), reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The protobuf encoding guide's own examples: field 1 = 150 is `08 96 01`; field 2 = "testing"
    /// is `12 07 74 65 73 74 69 6e 67`; −1 as int64 is ten bytes ending in 0x01.
    #[test]
    fn varints_and_strings_match_the_protobuf_spec() {
        let mut pb = Pb::default();
        pb.varint(1, 150);
        assert_eq!(pb.0, [0x08, 0x96, 0x01]);
        let mut pb = Pb::default();
        pb.string(2, "testing");
        assert_eq!(pb.0, [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']);
        let mut pb = Pb::default();
        pb.varint(1, -1i64 as u64);
        assert_eq!(pb.0, [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        let mut pb = Pb::default();
        pb.float(2, 1.0);
        assert_eq!(pb.0, [0x15, 0x00, 0x00, 0x80, 0x3f]);
    }

    /// A minimal protobuf reader: (field, wire type, payload) triples of one message.
    fn fields(mut b: &[u8]) -> Vec<(u64, u8, Vec<u8>, u64)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            for shift in (0..).step_by(7) {
                let byte = b[0];
                *b = &b[1..];
                v |= ((byte & 0x7f) as u64) << shift;
                if byte < 0x80 {
                    break;
                }
            }
            v
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = varint(&mut b);
            let (field, wire) = (key >> 3, (key & 7) as u8);
            match wire {
                0 => out.push((field, 0, vec![], varint(&mut b))),
                2 => {
                    let n = varint(&mut b) as usize;
                    out.push((field, 2, b[..n].to_vec(), 0));
                    b = &b[n..];
                }
                5 => {
                    out.push((field, 5, b[..4].to_vec(), 0));
                    b = &b[4..];
                }
                w => panic!("unexpected wire type {w}"),
            }
        }
        out
    }

    /// Every parameter of the network appears as an initializer with its exact bytes, every node
    /// input is defined before use, and the graph ends in `net`.
    /// Decodes an export and checks: every float parameter of the network appears once (the
    /// constants the graph adds — GroupNorm's unit scales and zero biases, scalars — aside), every
    /// node's inputs are defined before it (inputs, initializers, earlier nodes), no value is
    /// defined twice, and the last node writes `output`. Returns the initializers by name.
    fn check_export(bytes: &[u8], inputs: &[&str], output: &str, params: usize) -> std::collections::HashMap<String, Vec<u8>> {
        let model = fields(bytes);
        assert_eq!(model.iter().find(|f| f.0 == 1).unwrap().3, IR_VERSION);
        let graph = &model.iter().find(|f| f.0 == 7).unwrap().2;
        let graph = fields(graph);
        let mut defined: std::collections::HashSet<String> = inputs.iter().map(|s| s.to_string()).collect();
        let mut raws = std::collections::HashMap::new();
        let mut float_values = 0usize;
        for (_, _, init, _) in graph.iter().filter(|f| f.0 == 5) {
            let f = fields(init);
            let name = String::from_utf8(f.iter().find(|x| x.0 == 8).unwrap().2.clone()).unwrap();
            let dtype = f.iter().find(|x| x.0 == 2).unwrap().3;
            let rank = f.iter().filter(|x| x.0 == 1).count();
            let numel: u64 = f.iter().filter(|x| x.0 == 1).map(|x| x.3).product();
            let raw = &f.iter().find(|x| x.0 == 9).unwrap().2;
            assert_eq!(raw.len() as u64, numel * if dtype == FLOAT { 4 } else { 8 }, "{name}");
            if dtype == FLOAT && rank > 0 && !name.contains("unit_scale") && !name.contains("zero_bias") {
                float_values += numel as usize;
            }
            raws.insert(name.clone(), raw.clone());
            assert!(defined.insert(name.clone()), "{name} defined twice");
        }
        assert_eq!(float_values, params, "every parameter exported once");
        let mut last = String::new();
        for (_, _, node, _) in graph.iter().filter(|f| f.0 == 1) {
            let f = fields(node);
            for (_, _, input, _) in f.iter().filter(|x| x.0 == 1) {
                let input = String::from_utf8(input.clone()).unwrap();
                assert!(defined.contains(&input), "{input} used before it is defined");
            }
            last = String::from_utf8(f.iter().find(|x| x.0 == 2).unwrap().2.clone()).unwrap();
            assert!(defined.insert(last.clone()), "{last} defined twice");
        }
        assert_eq!(last, output);
        raws
    }

    fn le_bytes(values: Vec<f32>) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn exported_graph_holds_every_weight_and_is_topologically_ordered() {
        let device = Device::flex();
        let cfg = ScoreNetConfig { height: 7, width: 10, widths: vec![8, 16, 16], embed_dim: 8, ..Default::default() };
        let net = cfg.init(&device).unwrap();
        let raws = check_export(&export(&net, &cfg, "test").unwrap(), &["x", "t"], "net", net.num_params());
        // The first Conv's weights are the Burn tensor's bytes, in order.
        assert_eq!(raws["down.0.weight"], le_bytes(f32s("w", net.down[0].conv.weight.val()).unwrap()));
    }

    /// The U-Net's export: every parameter once (the affine layers split into their scale and
    /// shift halves, which together hold the [E, 2C] weights), in order, ending in `F`.
    #[test]
    fn unet_export_holds_every_weight_and_is_topologically_ordered() {
        let device = Device::flex();
        let cfg = UNetConfig { height: 7, width: 10, widths: vec![8, 16, 32], embed_dim: 8, ..Default::default() };
        let net = cfg.init(&device).unwrap();
        let raws = check_export(&export_unet(&net, &cfg, "test").unwrap(), &["x", "c_noise"], "F", net.num_params());
        assert_eq!(raws["encoder.1.conv0.weight"], le_bytes(f32s("w", net.encoder[1].conv0.weight.val()).unwrap()));
        // Row r of the [E, 2C] affine weights is [scale half | shift half].
        let w = f32s("w", net.decoder[0].affine.weight.val()).unwrap();
        let c = 8;
        let scale: Vec<f32> = w.chunks(2 * c).flat_map(|row| row[..c].to_vec()).collect();
        let shift: Vec<f32> = w.chunks(2 * c).flat_map(|row| row[c..].to_vec()).collect();
        assert_eq!(raws["decoder.0.affine.scale.weight"], le_bytes(scale));
        assert_eq!(raws["decoder.0.affine.shift.weight"], le_bytes(shift));
    }
}
