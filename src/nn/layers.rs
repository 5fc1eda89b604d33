//! What the networks share: the checks on a card's sizes, the resolution at each level, the
//! batch a device can hold, and the fixed Fourier frequencies of the noise embedding.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::error::ConfigError;

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

/// GroupNorm groups for c channels: groups of at least 4 channels, at most 32 groups.
pub(crate) fn groups(c: usize) -> usize {
    (c / 4).clamp(1, 32)
}

/// Fixed random frequencies ~ N(0, scale²), from a seeded SplitMix64 + Box–Muller, so that a
/// config always yields the same features on every platform (the shipped weights were trained
/// with exactly these: the stream must not change).
pub(crate) fn gaussian_frequencies(seed: u64, n: usize, scale: f64) -> Vec<f32> {
    let mut rng = crate::rng::SplitMix::new(seed ^ crate::rng::GOLDEN_GAMMA);
    (0..n).map(|_| (rng.normal() * scale) as f32).collect()
}

/// The cross-entropy of a classifier's logits [B, K] against labels, −Σ_k y_k log softmax(logits)_k
/// with y one-hot, averaged over the batch (the classifiers' training loss).
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    let [b, k] = logits.dims();
    let one_hot: Vec<f32> = labels.iter().flat_map(|&l| (0..k).map(move |j| if j == l { 1.0 } else { 0.0 })).collect();
    let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [b, k]), &logits.device());
    (log_softmax(logits, 1) * one_hot).sum().neg() / b as f64
}

#[cfg(test)]
mod tests {
    /// −Σ_k y_k log softmax(z)_k averaged over the batch: uniform logits over K classes give ln K
    /// whatever the label; logits (0, ln 3) give −ln ¾ for label 1 and −ln ¼ for label 0.
    #[test]
    fn cross_entropy_of_known_logits() {
        let device = Device::flex();
        let uniform = Tensor::<2>::zeros([2, 5], &device);
        let ce: f32 = cross_entropy(uniform, &[0, 3]).into_scalar();
        assert!((ce - 5f32.ln()).abs() < 1e-6, "{ce}");
        let z = Tensor::<2>::from_data(TensorData::new(vec![0.0, 3f32.ln(), 0.0, 3f32.ln()], [2, 2]), &device);
        let ce: f32 = cross_entropy(z, &[1, 0]).into_scalar();
        let want = (-(0.75f32).ln() - (0.25f32).ln()) / 2.0;
        assert!((ce - want).abs() < 1e-6, "{ce} against {want}");
    }

    use super::*;

    /// The Fourier frequencies of the shipped networks are drawn, not stored: their stream must
    /// stay bit for bit what it was when the weights were trained (values of the first four for
    /// seed 0, scale 16, as f32 bits).
    #[test]
    fn fourier_frequencies_are_the_stream_the_weights_were_trained_with() {
        let bits: Vec<u32> = gaussian_frequencies(0, 4, 16.0).iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, [0x41a3_aa44, 0x4043_6765, 0x4130_1dc7, 0x3e9f_cbaf]);
    }
}
