//! The first score network (`ncsn` in version-1 cards).
//!
//! Its layout follows the score network of Song et al. 2021 (appendix H, "NCSN++" in miniature)
//! and of the score_sde MNIST tutorial: Gaussian Fourier features of t (Tancik et al. 2020) feed an
//! MLP whose output is added to every block; each block is conv → + time → GroupNorm → SiLU; the
//! decoder mirrors the encoder with transposed convolutions and skip connections; the output is
//! divided by the marginal std σ(t) ([`crate::model::ScoreModel`]), so that the network only has
//! to predict −z (the noise that was added, in units of σ) and its output scale stays O(1) at
//! every noise level.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::layers::{gaussian_frequencies, groups, level_sizes, max_batch_for, silu, validate_shape};
use crate::error::ConfigError;
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
#[cfg(test)]
mod tests {
    use super::*;

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
}
