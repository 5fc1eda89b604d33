//! The architectures a model card can name ([`Architecture`]), the first score network
//! ([`ScoreNet`], version-1 cards), and the one adapter that turns a network's output into a
//! score ([`ScoreModel`]). The residual U-Net of newer cards lives in [`crate::unet`].
//!
//! The first network's layout follows the score network of Song et al. 2021 (appendix H, "NCSN++" in miniature)
//! and of the score_sde MNIST tutorial: Gaussian Fourier features of t (Tancik et al. 2020) feed an
//! MLP whose output is added to every block; each block is conv → + time → GroupNorm → SiLU; the
//! decoder mirrors the encoder with transposed convolutions and skip connections; the output is
//! divided by the marginal std σ(t), so that the network only has to predict −z (the noise that
//! was added, in units of σ) and its output scale stays O(1) at every noise level.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::silu;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::precond::{Parameterisation, edm_coefficients};
use crate::sde::Sde;
use crate::unet::{UNet, UNetConfig};

/// Architecture of the score network, stored in the model card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreNetConfig {
    /// Image channels C.
    pub channels: usize,
    /// Image height H.
    pub height: usize,
    /// Image width W.
    pub width: usize,
    /// Feature channels per U-Net level; each level after the first halves the resolution.
    /// Default [32, 64, 128, 256] (the score_sde MNIST tutorial's widths, ~1.1M parameters).
    pub widths: Vec<usize>,
    /// Width of the time embedding (256 in the tutorial).
    pub embed_dim: usize,
    /// Std of the Gaussian Fourier feature frequencies (16 in NCSN++, `fourier_scale`).
    pub fourier_scale: f64,
    /// Seed of the fixed random Fourier frequencies (they are stored with the weights too).
    pub fourier_seed: u64,
}

impl Default for ScoreNetConfig {
    fn default() -> Self {
        Self { channels: 1, height: 28, width: 28, widths: vec![32, 64, 128, 256], embed_dim: 256, fourier_scale: 16.0, fourier_seed: 0 }
    }
}

/// Checks the sizes both architectures share (image, level widths, embedding, Fourier scale),
/// naming the `architecture.*` field at fault.
pub(crate) fn validate_shape(channels: usize, height: usize, width: usize, widths: &[usize], embed_dim: usize, fourier_scale: f64) -> Result<(), ConfigError> {
    let field = |f: &str| format!("architecture.{f}");
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(ConfigError::invalid(field("channels"), format!("must be in 1..={MAX_CHANNELS}, got {channels}")));
    }
    for (name, v) in [("height", height), ("width", width)] {
        if !(2..=MAX_IMAGE_SIDE).contains(&v) {
            return Err(ConfigError::invalid(field(name), format!("must be in 2..={MAX_IMAGE_SIDE}, got {v}")));
        }
    }
    if widths.is_empty() || widths.len() > MAX_LEVELS {
        return Err(ConfigError::invalid(field("widths"), format!("must list 1..={MAX_LEVELS} levels, got {}", widths.len())));
    }
    for &w in widths {
        if w == 0 || w > MAX_WIDTH || w % 4 != 0 {
            return Err(ConfigError::invalid(field("widths"), format!("each width must be a multiple of 4 in 4..={MAX_WIDTH}, got {w}")));
        }
    }
    if embed_dim < 2 || embed_dim > MAX_WIDTH || embed_dim % 2 != 0 {
        return Err(ConfigError::invalid(field("embed_dim"), format!("must be even, in 2..={MAX_WIDTH}, got {embed_dim}")));
    }
    if !(fourier_scale.is_finite() && fourier_scale > 0.0) {
        return Err(ConfigError::invalid(field("fourier_scale"), format!("must be a positive number, got {fourier_scale}")));
    }
    Ok(())
}

/// [height, width] at each of `levels` levels: level 0 is the image, each later one ⌈size / 2⌉
/// (what a 3×3 stride-2 convolution with padding 1 makes).
pub(crate) fn level_sizes(height: usize, width: usize, levels: usize) -> Vec<[usize; 2]> {
    let mut sizes = vec![[height, width]];
    for _ in 1..levels {
        let [h, w] = *sizes.last().unwrap();
        sizes.push([h.div_ceil(2), w.div_ceil(2)]);
    }
    sizes
}

/// The largest batch whose biggest tensor (`per_image` f32 values per image) fits in
/// `max_tensor_bytes`: a device's maxStorageBufferBindingSize, for instance.
pub(crate) fn max_batch_for(per_image: usize, max_tensor_bytes: u64) -> usize {
    usize::try_from(max_tensor_bytes / (4 * per_image as u64).max(1)).unwrap_or(usize::MAX)
}

/// Upper bounds that keep a model card from asking for absurd allocations.
pub const MAX_IMAGE_SIDE: usize = 1024;
pub const MAX_CHANNELS: usize = 16;
pub const MAX_WIDTH: usize = 4096;
pub const MAX_LEVELS: usize = 8;

impl ScoreNetConfig {
    /// Checks sizes before anything is allocated.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_shape(self.channels, self.height, self.width, &self.widths, self.embed_dim, self.fourier_scale)
    }

    /// Spatial size at each level: level 0 is the image, each later level ceil(size / 2).
    fn level_sizes(&self) -> Vec<[usize; 2]> {
        level_sizes(self.height, self.width, self.widths.len())
    }

    /// Multiply–adds × 2 of one forward pass for one image: convolutions, transposed
    /// convolutions and dense layers (elementwise work, GroupNorm and the Fourier features are
    /// left out; they are under 1% here). A 3×3 conv from C to C' channels on an H'×W' output
    /// costs 2·C·C'·9·H'·W'; a transposed one 2·C·C'·9 per input pixel.
    pub fn flops_per_image(&self) -> u64 {
        let sizes = self.level_sizes();
        let emb = self.embed_dim as u64;
        let area = |i: usize| (sizes[i][0] * sizes[i][1]) as u64;
        let mut flops = 2 * emb * emb; // time-embedding MLP
        for (i, &w) in self.widths.iter().enumerate() {
            let c_in = if i == 0 { self.channels } else { self.widths[i - 1] } as u64;
            flops += 2 * c_in * w as u64 * 9 * area(i) + 2 * emb * w as u64;
        }
        let levels = self.widths.len();
        for i in (1..levels).rev() {
            let c_in = if i == levels - 1 { self.widths[i] } else { 2 * self.widths[i] } as u64;
            let c_out = self.widths[i - 1] as u64;
            flops += 2 * c_in * c_out * 9 * area(i) + 2 * emb * c_out;
        }
        let last_in = if levels == 1 { self.widths[0] } else { 2 * self.widths[0] } as u64;
        flops + 2 * last_in * self.channels as u64 * 9 * area(0)
    }

    /// Values in the largest single tensor that one image makes in a forward pass. A convolution
    /// is counted with its input unfolded (C_in·k²·H_out·W_out values, what an im2col kernel
    /// allocates; C_out·k² per input pixel for a transposed one), so that the bound holds
    /// whichever kernel the backend picks; the skip concatenations are counted too.
    pub fn largest_tensor_per_image(&self) -> usize {
        let sizes = self.level_sizes();
        let area = |i: usize| sizes[i][0] * sizes[i][1];
        let levels = self.widths.len();
        let mut largest = self.channels * area(0);
        for (i, &w) in self.widths.iter().enumerate() {
            let c_in = if i == 0 { self.channels } else { self.widths[i - 1] };
            largest = largest.max(c_in * 9 * area(i)).max(w * area(i));
        }
        for i in (1..levels).rev() {
            let c_out = self.widths[i - 1];
            largest = largest.max(c_out * 9 * area(i)).max(2 * c_out * area(i - 1));
        }
        let last_in = if levels == 1 { self.widths[0] } else { 2 * self.widths[0] };
        largest.max(last_in * 9 * area(0))
    }

    /// The largest batch whose biggest tensor ([`Self::largest_tensor_per_image`], f32) fits in
    /// `max_tensor_bytes`: a device's maxStorageBufferBindingSize, for instance.
    pub fn max_batch_for(&self, max_tensor_bytes: u64) -> usize {
        max_batch_for(self.largest_tensor_per_image(), max_tensor_bytes)
    }

    /// Creates a network with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Result<ScoreNet, ConfigError> {
        self.validate()?;
        let emb = self.embed_dim;
        let groups = |c: usize| (c / 4).min(32);
        let sizes = self.level_sizes();

        let mut down = Vec::new();
        for (i, &w) in self.widths.iter().enumerate() {
            let (c_in, stride) = if i == 0 { (self.channels, 1) } else { (self.widths[i - 1], 2) };
            down.push(DownBlock {
                conv: Conv2dConfig::new([c_in, w], [3, 3])
                    .with_stride([stride, stride])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
                time: LinearConfig::new(emb, w).init(device),
                norm: GroupNormConfig::new(groups(w), w).init(device),
            });
        }
        // Decoder, deepest first: level i (i ≥ 1) goes back up to the size of level i − 1.
        let mut up = Vec::new();
        let levels = self.widths.len();
        for i in (1..levels).rev() {
            let c_in = if i == levels - 1 { self.widths[i] } else { 2 * self.widths[i] };
            let c_out = self.widths[i - 1];
            // A 3×3 stride-2 transposed conv with padding 1 maps n to 2n − 1 (+ padding_out).
            let out_pad = [sizes[i - 1][0] + 1 - 2 * sizes[i][0], sizes[i - 1][1] + 1 - 2 * sizes[i][1]];
            up.push(UpBlock {
                conv: ConvTranspose2dConfig::new([c_in, c_out], [3, 3])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .with_padding_out(out_pad)
                    .init(device),
                time: LinearConfig::new(emb, c_out).init(device),
                norm: GroupNormConfig::new(groups(c_out), c_out).init(device),
            });
        }
        let last_in = if levels == 1 { self.widths[0] } else { 2 * self.widths[0] };
        let out = Conv2dConfig::new([last_in, self.channels], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);

        let freqs = gaussian_frequencies(self.fourier_seed, emb / 2, self.fourier_scale);
        let fourier = Param::from_tensor(Tensor::<1>::from_data(TensorData::new(freqs, [emb / 2]), device)).set_require_grad(false);
        Ok(ScoreNet {
            fourier,
            embed: LinearConfig::new(emb, emb).init(device),
            down,
            up,
            out,
        })
    }
}

/// Fixed random frequencies ~ N(0, scale²), from a seeded SplitMix64 + Box–Muller, so that a
/// config always yields the same features on every platform (the shipped weights were trained
/// with exactly these: the stream must not change).
pub(crate) fn gaussian_frequencies(seed: u64, n: usize, scale: f64) -> Vec<f32> {
    let mut rng = crate::rng::SplitMix::new(seed ^ crate::rng::GOLDEN_GAMMA);
    (0..n).map(|_| (rng.normal() * scale) as f32).collect()
}

/// conv → + dense(time) → GroupNorm → SiLU, at one resolution (or down by 2).
#[derive(Module, Debug)]
pub struct DownBlock {
    pub(crate) conv: Conv2d,
    pub(crate) time: Linear,
    pub(crate) norm: GroupNorm,
}

/// transposed conv (up by 2) → + dense(time) → GroupNorm → SiLU.
#[derive(Module, Debug)]
pub struct UpBlock {
    pub(crate) conv: ConvTranspose2d,
    pub(crate) time: Linear,
    pub(crate) norm: GroupNorm,
}

/// Adds the projected time embedding as a per-channel bias, then GroupNorm and SiLU.
fn condition(h: Tensor<4>, emb: &Tensor<2>, time: &Linear, norm: &GroupNorm) -> Tensor<4> {
    let [b, c] = [h.dims()[0], h.dims()[1]];
    let bias = time.forward(emb.clone()).reshape([b, c, 1, 1]); // [B, C, 1, 1]
    silu(norm.forward(h + bias))
}

/// The U-Net. Its raw output is in units of σ(t); [`ScoreModel`] turns it into a score.
#[derive(Module, Debug)]
pub struct ScoreNet {
    pub(crate) fourier: Param<Tensor<1>>,
    pub(crate) embed: Linear,
    pub(crate) down: Vec<DownBlock>,
    pub(crate) up: Vec<UpBlock>,
    pub(crate) out: Conv2d,
}

impl ScoreNet {
    /// Keeps the random Fourier frequencies fixed during training (they are features, not
    /// parameters; a loaded checkpoint marks every tensor trainable again).
    pub fn with_frozen_features(mut self) -> Self {
        self.fourier = self.fourier.set_require_grad(false);
        self
    }

    /// Raw network output.
    ///
    /// - `x`: [B, C, H, W] noisy images
    /// - `t`: [B] diffusion times in [ε, 1]
    /// - returns [B, C, H, W]
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>) -> Tensor<4> {
        let b = x.dims()[0];
        let w = self.fourier.val();
        let half = w.dims()[0];
        // Gaussian Fourier features [sin 2πtW, cos 2πtW] (Tancik et al. 2020).
        let proj = t.reshape([b, 1]) * w.reshape([1, half]) * (2.0 * std::f64::consts::PI); // [B, E/2]
        let features = Tensor::cat(vec![proj.clone().sin(), proj.cos()], 1); // [B, E]
        let emb = silu(self.embed.forward(features)); // [B, E]

        let mut skips = Vec::with_capacity(self.down.len());
        let mut h = x;
        for block in &self.down {
            h = condition(block.conv.forward(h), &emb, &block.time, &block.norm); // [B, w_i, H_i, W_i]
            skips.push(h.clone());
        }
        skips.pop(); // the deepest level feeds the decoder directly
        for block in &self.up {
            h = condition(block.conv.forward(h), &emb, &block.time, &block.norm); // [B, w_{i-1}, H_{i-1}, W_{i-1}]
            h = Tensor::cat(vec![h, skips.pop().expect("one skip per level")], 1); // [B, 2w_{i-1}, ..]
        }
        self.out.forward(h) // [B, C, H, W]
    }
}

/// A model card's architecture, tagged by `type`: the first score network of version-1 cards
/// (`ncsn`) or the residual U-Net (`unet`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Architecture {
    Ncsn(ScoreNetConfig),
    Unet(UNetConfig),
}

impl Architecture {
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Architecture::Ncsn(c) => c.validate(),
            Architecture::Unet(c) => c.validate(),
        }
    }

    /// [C, H, W] of the images the network takes.
    pub fn image_shape(&self) -> [usize; 3] {
        match self {
            Architecture::Ncsn(c) => [c.channels, c.height, c.width],
            Architecture::Unet(c) => [c.channels, c.height, c.width],
        }
    }

    pub fn flops_per_image(&self) -> u64 {
        match self {
            Architecture::Ncsn(c) => c.flops_per_image(),
            Architecture::Unet(c) => c.flops_per_image(),
        }
    }

    pub fn largest_tensor_per_image(&self) -> usize {
        match self {
            Architecture::Ncsn(c) => c.largest_tensor_per_image(),
            Architecture::Unet(c) => c.largest_tensor_per_image(),
        }
    }

    pub fn max_batch_for(&self, max_tensor_bytes: u64) -> usize {
        max_batch_for(self.largest_tensor_per_image(), max_tensor_bytes)
    }

    pub fn init(&self, device: &Device) -> Result<Network, ConfigError> {
        Ok(match self {
            Architecture::Ncsn(c) => Network::Ncsn(c.init(device)?),
            Architecture::Unet(c) => Network::Unet(c.init(device)?),
        })
    }
}

/// The network of a model.
#[derive(Clone, Debug)]
pub enum Network {
    Ncsn(ScoreNet),
    Unet(UNet),
}

impl Network {
    /// Raw output for a batch `x` [B, C, H, W] and per-sample noise labels [B] (t for `ncsn`,
    /// c_noise for `unet`).
    pub fn forward(&self, x: Tensor<4>, label: Tensor<1>) -> Tensor<4> {
        match self {
            Network::Ncsn(n) => n.forward(x, label),
            Network::Unet(n) => n.forward(x, label),
        }
    }

    pub fn num_params(&self) -> usize {
        match self {
            Network::Ncsn(n) => n.num_params(),
            Network::Unet(n) => n.num_params(),
        }
    }
}

/// Exactly one adapter from network output to score (score_sde `models/utils.py:get_score_fn`):
/// the only code that knows the network's parameterisation and the SDE's marginals together.
#[derive(Clone, Debug)]
pub struct ScoreModel {
    pub net: Network,
    pub param: Parameterisation,
    pub sde: Sde,
}

impl ScoreModel {
    /// The network's raw output at time t for the whole batch, with the input scaling and noise
    /// label of the parameterisation: net(x, t) for `noise`; F(c_in·x/m, c_noise) for `edm`
    /// (what the ONNX export computes from its inputs).
    pub fn network_output(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        let b = x.dims()[0];
        let device = x.device();
        let (m, sigma) = self.sde.marginal(t);
        match self.param {
            Parameterisation::Noise => self.net.forward(x, Tensor::full([b], t as f32, &device)),
            Parameterisation::Edm { sigma_data } => {
                let c = edm_coefficients(sigma / m, sigma_data);
                self.net.forward(x * (c.c_in / m), Tensor::full([b], c.c_noise as f32, &device))
            }
        }
    }
}

impl crate::sampling::ScoreFn for ScoreModel {
    /// `noise`: s = net(x, t)/σ(t).
    ///
    /// `edm`: with x(t) = m(t)·(y + σ̂n), σ̂ = σ(t)/m(t), the denoiser sees x̂ = x/m at σ̂ and
    /// s(x, t) = (m·D(x̂; σ̂) − x)/σ². Expanding D − x̂ = −σ̂²/(σ̂² + σ_d²)·x̂ + c_out·F avoids the
    /// cancellation of D − x̂ in f32 at small σ: s = −x̂/(m(σ̂² + σ_d²)) + (m·c_out/σ²)·F.
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        let (m, sigma) = self.sde.marginal(t);
        match self.param {
            Parameterisation::Noise => self.network_output(x, t) / sigma,
            Parameterisation::Edm { sigma_data } => {
                let s_hat = sigma / m;
                let c = edm_coefficients(s_hat, sigma_data);
                let f = self.network_output(x.clone(), t);
                x * (-1.0 / (m * m * (s_hat * s_hat + sigma_data * sigma_data))) + f * (m * c.c_out / (sigma * sigma))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::ScoreFn;

    #[test]
    fn output_shape_matches_input_for_odd_and_even_sizes() {
        let device = Device::flex();
        for (h, w, widths) in [(28, 28, vec![8, 16, 16, 32]), (8, 8, vec![8, 16]), (7, 10, vec![4, 8, 8]), (5, 5, vec![4])] {
            let cfg = ScoreNetConfig { channels: 2, height: h, width: w, widths, embed_dim: 8, ..Default::default() };
            let net = cfg.init(&device).unwrap();
            let x = Tensor::<4>::ones([3, 2, h, w], &device);
            let out = net.forward(x, Tensor::full([3], 0.5, &device));
            assert_eq!(out.dims(), [3, 2, h, w]);
        }
    }

    /// s_θ(x, t) · σ(t) equals the raw network output at every t: the 1/σ(t) scaling.
    #[test]
    fn score_is_network_output_over_marginal_std() {
        let device = Device::flex();
        let cfg = ScoreNetConfig { height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, ..Default::default() };
        let sde = Sde::ve(50.0);
        let model = ScoreModel { net: Network::Ncsn(cfg.init(&device).unwrap()), param: Parameterisation::Noise, sde };
        let x = Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        for t in [1e-5, 0.3, 1.0] {
            let raw = model.net.forward(x.clone(), Tensor::full([2], t as f32, &device));
            let score = model.score(x.clone(), t) * sde.marginal(t).1;
            let diff: f32 = (raw - score).abs().max().into_scalar();
            assert!(diff < 1e-4, "t = {t}: max |net − σ·s| = {diff}");
        }
    }

    /// A one-level net on 4×4 images, 1 → 4 channels, embedding 2: embed MLP 2·2·2 = 8, conv
    /// 2·1·4·9·16 = 1152 plus its time dense 2·2·4 = 16, output conv 2·4·1·9·16 = 1152.
    #[test]
    fn flops_of_a_tiny_net_by_hand() {
        let cfg = ScoreNetConfig { channels: 1, height: 4, width: 4, widths: vec![4], embed_dim: 2, ..Default::default() };
        assert_eq!(cfg.flops_per_image(), 8 + 1152 + 16 + 1152);
        // The default MNIST net: convolutions 63,581,184 (per-layer terms summed by hand) + dense.
        assert_eq!(ScoreNetConfig::default().flops_per_image(), 63_581_184 + 2 * 256 * 256 + 2 * 256 * (32 + 64 + 128 + 256 + 128 + 64 + 32));
    }

    /// For the MNIST net the largest tensor is the output conv's unfolded input: 2·32 channels
    /// × 9 taps × 28·28 pixels = 451,584 values (1.8 MB); WebGPU's default 128 MiB binding holds
    /// 74 such images.
    #[test]
    fn largest_tensor_and_batch_limit_of_the_default_net() {
        let cfg = ScoreNetConfig::default();
        assert_eq!(cfg.largest_tensor_per_image(), 64 * 9 * 28 * 28);
        assert_eq!(cfg.max_batch_for(128 << 20), (128 << 20) / (4 * 451_584));
        assert_eq!(cfg.max_batch_for(128 << 20), 74);
        // A one-level net on 4×4: the out conv unfolds 4·9·16 = 576 values per image.
        let tiny = ScoreNetConfig { channels: 1, height: 4, width: 4, widths: vec![4], embed_dim: 2, ..Default::default() };
        assert_eq!(tiny.largest_tensor_per_image(), 576);
        assert_eq!(tiny.max_batch_for(4 * 576 * 3 + 5), 3);
    }

    #[test]
    fn default_config_has_about_a_million_parameters() {
        let net = ScoreNetConfig::default().init(&Device::flex()).unwrap();
        let n = net.num_params();
        assert!((1_000_000..1_300_000).contains(&n), "{n} parameters");
    }

    #[test]
    fn absurd_configs_are_refused_before_allocating() {
        let bad = ScoreNetConfig { height: 100_000, ..Default::default() };
        assert!(matches!(bad.validate(), Err(ConfigError::Invalid { field, .. }) if field == "architecture.height"));
        let bad = ScoreNetConfig { widths: vec![30], ..Default::default() };
        assert!(bad.validate().is_err());
    }

    /// The Fourier frequencies of the shipped networks are drawn, not stored: their stream must
    /// stay bit for bit what it was when the weights were trained (values of the first four for
    /// seed 0, scale 16, as f32 bits).
    #[test]
    fn fourier_frequencies_are_the_stream_the_weights_were_trained_with() {
        let bits: Vec<u32> = gaussian_frequencies(0, 4, 16.0).iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, [0x41a3_aa44, 0x4043_6765, 0x4130_1dc7, 0x3e9f_cbaf]);
    }
}
