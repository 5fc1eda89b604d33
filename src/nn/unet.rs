//! The residual U-Net F(x, c_noise) that the EDM denoiser wraps ([`crate::precond`]).
//!
//! A small relative of the DDPM++ / NCSN++ networks of Song et al. 2021 (appendix H) as cleaned
//! up in Karras et al. 2022 (EDM, `training/networks.py` `SongUNet`): residual blocks of
//! GroupNorm → SiLU → conv, with the noise embedding entering as a per-channel scale and shift
//! after the second GroupNorm; dropout before the last conv; self-attention at the lowest
//! resolution; stride-2 convolutions down, transposed convolutions up, and the encoder's output
//! at each level concatenated onto the decoder's input there. Every residual sum is scaled by
//! 1/√2 so that activations keep their variance. The network knows nothing about σ, σ_data or
//! the SDE: it sees c_in·x and the noise label c_noise, and its output is scaled by the
//! preconditioning.
//!
//! Layout for widths [w₀, w₁, …, w_L] (level i has side ⌈side/2^i⌉):
//!
//! ```text
//! x ─ conv_in ─ Res(w₀) ─────────────────────────────────────────── cat ─ Res(w₀) ─ out
//!                  └ down ─ Res(w₁) ───────────────── cat ─ Res(w₁) ─ up ┘
//!                              └ down ─ Res(w_L)+Attn ─ cat ─ Res(w_L)+Attn ─ up ┘
//! ```

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use super::layers::{gaussian_frequencies, groups, level_sizes, silu, validate_shape};
use crate::error::ConfigError;

/// Channels per attention head (EDM `channels_per_head` is 64 for its wider nets; ours are
/// narrow, so heads of 32).
pub const HEAD_CHANNELS: usize = 32;

/// Architecture of the residual U-Net, stored in the model card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// Image channels C.
    pub channels: usize,
    /// Image height H.
    pub height: usize,
    /// Image width W.
    pub width: usize,
    /// Feature channels per level; each level after the first halves the resolution.
    pub widths: Vec<usize>,
    /// Width of the noise embedding.
    pub embed_dim: usize,
    /// Std of the Gaussian Fourier frequencies applied to c_noise (EDM's NCSN++ uses 16).
    pub fourier_scale: f64,
    /// Seed of the fixed Fourier frequencies (stored with the weights too).
    pub fourier_seed: u64,
    /// Dropout probability inside the residual blocks, during training only (EDM: 0.10 for
    /// CIFAR-10, 0.13 for its class-conditional runs).
    pub dropout: f64,
}

impl Default for UNetConfig {
    /// The shipped MNIST network (widths chosen for the CPU budget; docs/EVALUATION.md).
    fn default() -> Self {
        Self { channels: 1, height: 28, width: 28, widths: vec![24, 48, 96], embed_dim: 128, fourier_scale: 16.0, fourier_seed: 0, dropout: 0.1 }
    }
}

/// Attention heads at c channels.
fn heads(c: usize) -> usize {
    if c % HEAD_CHANNELS == 0 { c / HEAD_CHANNELS } else { 1 }
}

impl UNetConfig {
    /// Checks sizes before anything is allocated.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_shape(self.channels, self.height, self.width, &self.widths, self.embed_dim, self.fourier_scale)?;
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return Err(ConfigError::invalid("architecture.dropout", format!("must be in [0, 1), got {}", self.dropout)));
        }
        Ok(())
    }

    /// [height, width] at each level: level 0 is the image, each later one ⌈size / 2⌉.
    pub fn level_sizes(&self) -> Vec<[usize; 2]> {
        level_sizes(self.height, self.width, self.widths.len())
    }

    /// Channels into the decoder block of level i: the decoder state (from the level below, or
    /// the encoder's last output at the lowest level) concatenated with the encoder skip.
    fn decoder_in(&self, i: usize) -> usize {
        2 * self.widths[i]
    }

    /// Multiply–adds × 2 of one forward pass for one image: convolutions, transposed
    /// convolutions, attention's matrix products and dense layers (GroupNorm, activations and
    /// the Fourier features are elementwise and left out). A k×k conv from C to C' channels on an
    /// H'×W' output costs 2·C·C'·k²·H'·W'; a transposed one 2·C·C'·k² per input pixel.
    pub fn flops_per_image(&self) -> u64 {
        let sizes = self.level_sizes();
        let area = |i: usize| (sizes[i][0] * sizes[i][1]) as u64;
        let conv = |c_in: usize, c_out: usize, k: u64, pixels: u64| 2 * c_in as u64 * c_out as u64 * k * k * pixels;
        let e = self.embed_dim as u64;
        let res = |c_in: usize, c_out: usize, pixels: u64| {
            conv(c_in, c_out, 3, pixels) + conv(c_out, c_out, 3, pixels) + if c_in != c_out { conv(c_in, c_out, 1, pixels) } else { 0 } + 2 * e * 2 * c_out as u64
        };
        let attn = |c: usize, pixels: u64| conv(c, 3 * c, 1, pixels) + 2 * 2 * pixels * pixels * c as u64 + conv(c, c, 1, pixels);
        let levels = self.widths.len();
        let last = levels - 1;
        let mut flops = 2 * 2 * e * e; // the embedding MLP
        flops += conv(self.channels, self.widths[0], 3, area(0));
        for i in 0..levels {
            let c_in = if i == 0 { self.widths[0] } else { self.widths[i - 1] };
            if i > 0 {
                flops += conv(c_in, c_in, 3, area(i)); // down
            }
            flops += res(c_in, self.widths[i], area(i));
            flops += res(self.decoder_in(i), self.widths[i], area(i));
            if i > 0 {
                flops += conv(self.widths[i], self.widths[i - 1], 3, area(i)); // up, per input pixel
            }
        }
        flops += 2 * attn(self.widths[last], area(last));
        flops + conv(self.widths[0], self.channels, 3, area(0))
    }

    /// Values in the largest single tensor that one image makes in a forward pass, with every
    /// convolution's input counted unfolded (C_in·k²·H_out·W_out values, what an im2col kernel
    /// allocates; C_out·k² per input pixel for a transposed one), the attention matrix
    /// (heads·(HW)²) and the concatenations, so that the bound holds whichever kernel the
    /// backend picks.
    pub fn largest_tensor_per_image(&self) -> usize {
        let sizes = self.level_sizes();
        let area = |i: usize| sizes[i][0] * sizes[i][1];
        let levels = self.widths.len();
        let mut largest = 9 * self.channels * area(0);
        for i in 0..levels {
            let c_in = if i == 0 { self.widths[0] } else { self.widths[i - 1] };
            let cat = self.decoder_in(i);
            largest = largest.max(9 * c_in * area(i)).max(9 * cat * area(i)).max(9 * self.widths[i] * area(i));
            if i > 0 {
                largest = largest.max(9 * self.widths[i - 1] * area(i)).max(9 * c_in * area(i - 1));
            }
        }
        let last = levels - 1;
        largest.max(heads(self.widths[last]) * area(last) * area(last)).max(3 * self.widths[last] * area(last))
    }


    /// Creates a network with freshly initialised weights (the output convolution and the last
    /// conv of every residual branch start at zero, so the untrained net is the identity on each
    /// residual path and F = 0: EDM's `init_zero`).
    pub fn init(&self, device: &Device) -> Result<UNet, ConfigError> {
        self.validate()?;
        let e = self.embed_dim;
        let sizes = self.level_sizes();
        let levels = self.widths.len();
        let last = levels - 1;
        let conv3 = |c_in: usize, c_out: usize, stride: usize| {
            Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let mut down = Vec::new();
        let mut encoder = Vec::new();
        let mut decoder = Vec::new();
        let mut up = Vec::new();
        for i in 0..levels {
            let c_in = if i == 0 { self.widths[0] } else { self.widths[i - 1] };
            if i > 0 {
                down.push(conv3(c_in, c_in, 2));
            }
            encoder.push(ResBlock::new(c_in, self.widths[i], e, self.dropout, device));
            decoder.push(ResBlock::new(self.decoder_in(i), self.widths[i], e, self.dropout, device));
            if i > 0 {
                // A 3×3 stride-2 transposed conv with padding 1 maps n to 2n − 1 (+ padding_out).
                let out_pad = [sizes[i - 1][0] + 1 - 2 * sizes[i][0], sizes[i - 1][1] + 1 - 2 * sizes[i][1]];
                up.push(
                    ConvTranspose2dConfig::new([self.widths[i], self.widths[i - 1]], [3, 3])
                        .with_stride([2, 2])
                        .with_padding([1, 1])
                        .with_padding_out(out_pad)
                        .init(device),
                );
            }
        }
        let freqs = gaussian_frequencies(self.fourier_seed, e / 2, self.fourier_scale);
        let fourier = Param::from_tensor(Tensor::<1>::from_data(TensorData::new(freqs, [e / 2]), device)).set_require_grad(false);
        Ok(UNet {
            fourier,
            map0: LinearConfig::new(e, e).init(device),
            map1: LinearConfig::new(e, e).init(device),
            conv_in: conv3(self.channels, self.widths[0], 1),
            down,
            encoder,
            enc_attn: Attention::new(self.widths[last], device),
            dec_attn: Attention::new(self.widths[last], device),
            decoder,
            up,
            out_norm: GroupNormConfig::new(groups(self.widths[0]), self.widths[0]).init(device),
            out_conv: Conv2dConfig::new([self.widths[0], self.channels], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_initializer(Initializer::Zeros)
                .init(device),
        })
    }
}

/// GroupNorm → SiLU → conv → GroupNorm · (1 + scale) + shift → SiLU → dropout → conv, plus the
/// input (through a 1×1 conv when the width changes), over √2 (EDM `UNetBlock` with
/// `adaptive_scale=True`).
#[derive(Module, Debug)]
pub struct ResBlock {
    pub(crate) norm0: GroupNorm,
    pub(crate) conv0: Conv2d,
    /// Noise embedding → (scale, shift), 2·C_out values.
    pub(crate) affine: Linear,
    pub(crate) norm1: GroupNorm,
    pub(crate) conv1: Conv2d,
    pub(crate) skip: Option<Conv2d>,
    pub(crate) dropout: f64,
}

impl ResBlock {
    pub(crate) fn new(c_in: usize, c_out: usize, embed_dim: usize, dropout: f64, device: &Device) -> Self {
        let conv = |c_in: usize, c_out: usize, init: Option<Initializer>| {
            let cfg = Conv2dConfig::new([c_in, c_out], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
            match init {
                Some(init) => cfg.with_initializer(init).init(device),
                None => cfg.init(device),
            }
        };
        Self {
            norm0: GroupNormConfig::new(groups(c_in), c_in).init(device),
            conv0: conv(c_in, c_out, None),
            affine: LinearConfig::new(embed_dim, 2 * c_out).init(device),
            norm1: GroupNormConfig::new(groups(c_out), c_out).init(device),
            conv1: conv(c_out, c_out, Some(Initializer::Zeros)),
            skip: (c_in != c_out).then(|| Conv2dConfig::new([c_in, c_out], [1, 1]).init(device)),
            dropout,
        }
    }

    /// - `x`: [B, C_in, H, W], `emb`: [B, E] → [B, C_out, H, W]
    pub fn forward(&self, x: Tensor<4>, emb: &Tensor<2>) -> Tensor<4> {
        let h = self.conv0.forward(silu(self.norm0.forward(x.clone()))); // [B, C_out, H, W]
        let [b, c, ..] = h.dims();
        let params = self.affine.forward(emb.clone()).reshape([b, 2 * c, 1, 1]); // [B, 2C, 1, 1]
        let [scale, shift]: [Tensor<4>; 2] = params.chunk(2, 1).try_into().expect("two halves");
        let h = silu(self.norm1.forward(h) * (scale + 1.0) + shift);
        let h = self.conv1.forward(dropout(h, self.dropout));
        let skip = match &self.skip {
            Some(conv) => conv.forward(x),
            None => x,
        };
        (h + skip) * std::f64::consts::FRAC_1_SQRT_2
    }
}

/// Zeroes each value with probability p and scales the rest by 1/(1 − p), only on an autodiff
/// device (training; a loaded model has p = 0, [`UNet::without_dropout`]); the draw comes from
/// the device generator, which the trainer seeds per step.
fn dropout(x: Tensor<4>, p: f64) -> Tensor<4> {
    if p == 0.0 || !x.device().is_autodiff() {
        return x;
    }
    let keep = x.random_like(Distribution::Bernoulli(1.0 - p));
    x * keep / (1.0 - p)
}

/// Multi-head self-attention over the pixels of one level, residual, over √2 (EDM `UNetBlock`
/// with `attention=True`; Vaswani et al. 2017).
#[derive(Module, Debug)]
pub struct Attention {
    pub(crate) norm: GroupNorm,
    pub(crate) qkv: Conv2d,
    pub(crate) proj: Conv2d,
    pub(crate) heads: usize,
}

impl Attention {
    fn new(c: usize, device: &Device) -> Self {
        Self {
            norm: GroupNormConfig::new(groups(c), c).init(device),
            qkv: Conv2dConfig::new([c, 3 * c], [1, 1]).init(device),
            proj: Conv2dConfig::new([c, c], [1, 1]).with_initializer(Initializer::Zeros).init(device),
            heads: heads(c),
        }
    }

    /// - `x`: [B, C, H, W] → [B, C, H, W]
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let (heads, d, n) = (self.heads, c / self.heads, h * w);
        // Channels of the qkv output are ordered (q|k|v, head, d).
        let qkv = self.qkv.forward(self.norm.forward(x.clone())).reshape([b, 3, c * n]); // [B, 3, C·HW]
        let [q, k, v]: [Tensor<3>; 3] = qkv.chunk(3, 1).try_into().expect("q, k, v");
        let shape = [b * heads, d, n];
        let (q, k, v) = (q.reshape(shape), k.reshape(shape), v.reshape(shape)); // [B·heads, d, HW]
        let logits = q.swap_dims(1, 2).matmul(k) / (d as f64).sqrt(); // [B·heads, HW (query), HW (key)]
        let weights = softmax(logits, 2);
        let out = v.matmul(weights.swap_dims(1, 2)).reshape([b, c, h, w]); // [B, C, H, W]
        (x + self.proj.forward(out)) * std::f64::consts::FRAC_1_SQRT_2
    }
}

/// Gaussian Fourier features of c_noise (frequencies `fourier`, fixed) through the two-layer MLP
/// `map0`, `map1` with SiLU: [B] → [B, E]. The U-Net and the noise-conditional classifier embed
/// their noise label so.
pub(crate) fn noise_embedding(c_noise: Tensor<1>, fourier: &Param<Tensor<1>>, map0: &Linear, map1: &Linear) -> Tensor<2> {
    let b = c_noise.dims()[0];
    let w = fourier.val();
    let half = w.dims()[0];
    let proj = c_noise.reshape([b, 1]) * w.reshape([1, half]) * (2.0 * std::f64::consts::PI); // [B, E/2]
    let features = Tensor::cat(vec![proj.clone().cos(), proj.sin()], 1); // [B, E]
    silu(map1.forward(silu(map0.forward(features))))
}

/// The network. `forward(c_in·x, c_noise)` is EDM's F_θ.
#[derive(Module, Debug)]
pub struct UNet {
    pub(crate) fourier: Param<Tensor<1>>,
    pub(crate) map0: Linear,
    pub(crate) map1: Linear,
    pub(crate) conv_in: Conv2d,
    pub(crate) down: Vec<Conv2d>,
    pub(crate) encoder: Vec<ResBlock>,
    pub(crate) enc_attn: Attention,
    pub(crate) dec_attn: Attention,
    pub(crate) decoder: Vec<ResBlock>,
    pub(crate) up: Vec<ConvTranspose2d>,
    pub(crate) out_norm: GroupNorm,
    pub(crate) out_conv: Conv2d,
}

impl UNet {
    /// The network for inference: dropout off. Dropout acts on an autodiff device, which is
    /// training, but also the likelihood's vᵀ ∂s/∂x and guidance's gradient, so a loaded model
    /// turns it off instead of relying on the device.
    pub fn without_dropout(mut self) -> Self {
        for block in self.encoder.iter_mut().chain(self.decoder.iter_mut()) {
            block.dropout = 0.0;
        }
        self
    }

    /// Keeps the random Fourier frequencies fixed during training (a loaded checkpoint marks
    /// every tensor trainable again).
    pub fn with_frozen_features(mut self) -> Self {
        self.fourier = self.fourier.set_require_grad(false);
        self
    }

    /// The noise embedding: Gaussian Fourier features of c_noise (Tancik et al. 2020) through a
    /// two-layer MLP with SiLU.
    ///
    /// - `c_noise`: [B] → [B, E]
    pub fn embed(&self, c_noise: Tensor<1>) -> Tensor<2> {
        noise_embedding(c_noise, &self.fourier, &self.map0, &self.map1)
    }

    /// F(x, c_noise).
    ///
    /// - `x`: [B, C, H, W] (already scaled by c_in)
    /// - `c_noise`: [B] noise labels
    /// - returns [B, C, H, W]
    pub fn forward(&self, x: Tensor<4>, c_noise: Tensor<1>) -> Tensor<4> {
        let emb = self.embed(c_noise); // [B, E]
        let levels = self.encoder.len();
        let mut h = self.conv_in.forward(x); // [B, w₀, H, W]
        let mut skips = Vec::with_capacity(levels);
        for i in 0..levels {
            if i > 0 {
                h = self.down[i - 1].forward(h); // [B, w_{i-1}, H_i, W_i]
            }
            h = self.encoder[i].forward(h, &emb); // [B, w_i, H_i, W_i]
            if i == levels - 1 {
                h = self.enc_attn.forward(h);
            }
            skips.push(h.clone());
        }
        for i in (0..levels).rev() {
            let skip = skips.pop().expect("one skip per level");
            h = self.decoder[i].forward(Tensor::cat(vec![h, skip], 1), &emb); // [B, w_i, H_i, W_i]
            if i == levels - 1 {
                h = self.dec_attn.forward(h);
            }
            if i > 0 {
                h = self.up[i - 1].forward(h); // [B, w_{i-1}, H_{i-1}, W_{i-1}]
            }
        }
        self.out_conv.forward(silu(self.out_norm.forward(h))) // [B, C, H, W]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(h: usize, w: usize, widths: Vec<usize>) -> UNetConfig {
        UNetConfig { channels: 2, height: h, width: w, widths, embed_dim: 8, dropout: 0.0, ..Default::default() }
    }

    #[test]
    fn output_shape_matches_input_for_odd_and_even_sizes() {
        let device = Device::flex();
        for (h, w, widths) in [(28, 28, vec![8, 16, 32]), (8, 8, vec![8, 16]), (7, 10, vec![4, 8, 8]), (5, 5, vec![4])] {
            let net = tiny(h, w, widths).init(&device).unwrap();
            let out = net.forward(Tensor::ones([3, 2, h, w], &device), Tensor::full([3], 0.5, &device));
            assert_eq!(out.dims(), [3, 2, h, w]);
        }
    }

    /// The output conv starts at zero (EDM's `init_zero`), so an untrained F is exactly 0 and the
    /// untrained denoiser is c_skip·x.
    #[test]
    fn untrained_network_outputs_zero() {
        let device = Device::flex();
        let net = tiny(8, 8, vec![8, 16]).init(&device).unwrap();
        let x = Tensor::<4>::random([2, 2, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let out: f32 = net.forward(x, Tensor::full([2], 0.3, &device)).abs().max().into_scalar();
        assert_eq!(out, 0.0);
    }

    /// Attention is permutation-equivariant over pixels: permuting the pixels of the input
    /// permutes the output the same way (here: a transpose of a square image; the qkv and output
    /// projections are 1×1, so only attention could mix pixels).
    #[test]
    fn attention_commutes_with_a_pixel_permutation() {
        let device = Device::flex();
        let mut attn = Attention::new(8, &device);
        attn.proj = Conv2dConfig::new([8, 8], [1, 1]).init(&device); // non-zero, so attention shows
        let x = Tensor::<4>::random([2, 8, 5, 5], Distribution::Normal(0.0, 1.0), &device);
        let a = attn.forward(x.clone()).swap_dims(2, 3);
        let b = attn.forward(x.swap_dims(2, 3));
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert!(diff < 1e-5, "max diff {diff}");
    }

    /// A 1-level net on 4×4, 1 channel → 4, embedding 2:
    /// MLP 2·2·2·2 = 16; conv_in 2·1·4·9·16 = 1152; encoder block (4→4) 2·(2·4·4·9·16) + affine
    /// 2·2·8 = 9216 + 32; decoder block (8→4) 2·8·4·9·16 + 2·4·4·9·16 + 1×1 2·8·4·16 + 32
    /// = 9216 + 4608 + 1024 + 32; attention at 4 channels twice: 2·(2·4·12·16 + 4·16·16·4 +
    /// 2·4·4·16) = 2·(1536 + 4096 + 512); out conv 2·4·1·9·16 = 1152.
    #[test]
    fn flops_of_a_tiny_net_by_hand() {
        let cfg = UNetConfig { channels: 1, height: 4, width: 4, widths: vec![4], embed_dim: 2, ..Default::default() };
        let want = 16 + 1152 + (9216 + 32) + (9216 + 4608 + 1024 + 32) + 2 * (1536 + 4096 + 512) + 1152;
        assert_eq!(cfg.flops_per_image(), want);
    }

    /// The FLOP count agrees with a count from the parameters: every conv weight (C_out·C_in·k²)
    /// is used once per output pixel (per input pixel for the transposed ones), each multiply–add
    /// counting 2.
    #[test]
    fn flops_agree_with_the_parameter_shapes() {
        let cfg = UNetConfig { dropout: 0.0, ..Default::default() };
        let net = cfg.init(&Device::flex()).unwrap();
        let sizes = cfg.level_sizes();
        let area = |i: usize| (sizes[i][0] * sizes[i][1]) as u64;
        let w = |c: &Conv2d| c.weight.val().shape().num_elements() as u64;
        let lin = |l: &Linear| l.weight.val().shape().num_elements() as u64;
        let res = |r: &ResBlock, i: usize| 2 * area(i) * (w(&r.conv0) + w(&r.conv1) + r.skip.as_ref().map_or(0, w)) + 2 * lin(&r.affine);
        let last = cfg.widths.len() - 1;
        let n = area(last);
        let c = cfg.widths[last] as u64;
        let attn = |a: &Attention| 2 * n * (w(&a.qkv) + w(&a.proj)) + 4 * n * n * c;
        let mut want = 2 * (lin(&net.map0) + lin(&net.map1)) + 2 * area(0) * (w(&net.conv_in) + w(&net.out_conv));
        for i in 0..cfg.widths.len() {
            want += res(&net.encoder[i], i) + res(&net.decoder[i], i);
            if i > 0 {
                want += 2 * area(i) * (w(&net.down[i - 1]) + net.up[i - 1].weight.val().shape().num_elements() as u64);
            }
        }
        want += attn(&net.enc_attn) + attn(&net.dec_attn);
        assert_eq!(cfg.flops_per_image(), want);
    }

    #[test]
    fn absurd_configs_are_refused_before_allocating() {
        let bad = UNetConfig { height: 100_000, ..Default::default() };
        assert!(matches!(bad.validate(), Err(ConfigError::Invalid { field, .. }) if field == "architecture.height"));
        assert!(UNetConfig { widths: vec![30], ..Default::default() }.validate().is_err());
        assert!(UNetConfig { dropout: 1.0, ..Default::default() }.validate().is_err());
    }
}
