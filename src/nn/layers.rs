//! What the networks share: the checks on a card's sizes, the resolution at each level, the
//! batch a device can hold, and the fixed Fourier frequencies of the noise embedding.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::error::ConfigError;

/// SiLU, x·σ(x) (Elfwing et al. 2018), the networks' activation. On the CPU backend outside
/// autodiff — sampling, in the browser and natively — it is one pass over the values with
/// [`exp_f32`], which the compiler vectorises: Burn flex's own `x * sigmoid(x)` calls the scalar
/// `exp` per value and makes two passes, which made the activations about a sixth of a forward
/// pass on the CPU (docs/PERFORMANCE.md, "The SiLU"). Elsewhere (training, WebGPU) it is Burn's.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if device.is_autodiff() || device != Device::flex() {
        return burn::tensor::activation::silu(x);
    }
    let shape = x.shape();
    let mut values = x.into_data().try_into_vec::<f32>().expect("the networks run in f32 (weights of other dtypes are widened when loaded)");
    for v in values.iter_mut() {
        *v = silu_f32(*v);
    }
    Tensor::from_data(TensorData::new(values, shape), &device)
}

/// x / (1 + e^(−x)).
#[inline(always)]
pub(crate) fn silu_f32(x: f32) -> f32 {
    x / (1.0 + exp_f32(-x))
}

/// e^x to about one unit in the last place, branch-free so that a loop of it vectorises (wasm
/// SIMD, AVX): e^x = 2ⁿ·e^r with n = round(x/ln 2) and r = x − n·ln 2 in [−ln 2/2, ln 2/2]
/// (ln 2 split in two parts, Cody & Waite 1980, so that n·ln 2 is exact enough), e^r by its Taylor
/// polynomial of degree 7 (remainder below r⁸/8! ≈ 5·10⁻⁹), 2ⁿ written into the exponent bits.
/// x is first clamped to [−87, 88], where 2ⁿ is a normal float: beyond, e^x is 0 or ∞ to f32's
/// range anyway (and silu's x/(1 + e^(−x)) then 0 or x as it should be); NaN stays NaN through
/// silu's numerator.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5·2²³: adding and subtracting it rounds a float of magnitude < 2²² to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0).min(88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (1.0 / 2.0 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2ⁿ: n + 127 (in 1..=254) lands in the low mantissa bits of 2²³ + n + 127, and 23 places up
    // it is the exponent field (the bits of 2²³ itself fall off the top). A float-to-int cast
    // would do it too, but Rust's saturating cast does not vectorise on every target.
    p * f32::from_bits((n + (127.0 + 8_388_608.0)).to_bits() << 23)
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

    /// The vectorised e^x is within 2 units in the last place of the library's over the whole
    /// range where f32's e^x is a normal number, and the fast SiLU within 3 ulp (or 10⁻³⁵
    /// absolutely, below x = −87 where it is ~0) of x·σ(x) computed in f64; both keep NaN, and the tensor
    /// version on the CPU equals the per-value one and Burn's silu to 10⁻⁶.
    #[test]
    fn the_fast_silu_matches_the_exact_one() {
        let ulp = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).abs();
        let mut worst = 0;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            worst = worst.max(ulp(exp_f32(x), x.exp()));
        }
        assert!(worst <= 2, "e^x off by {worst} ulp");
        for i in 0..=200_000 {
            let x = -100.0 + 200.0 * i as f32 / 200_000.0;
            let exact = (x as f64 / (1.0 + (-(x as f64)).exp())) as f32;
            let fast = silu_f32(x);
            assert!(ulp(fast, exact) <= 3 || (fast - exact).abs() < 1e-35, "silu({x}) = {fast}, exactly {exact}");
        }
        assert!(silu_f32(f32::NAN).is_nan() && exp_f32(f32::NAN).is_finite());
        let device = Device::flex();
        let values: Vec<f32> = (0..600).map(|i| (i as f32 - 300.0) / 25.0).collect();
        let x = Tensor::<2>::from_data(TensorData::new(values.clone(), [20, 30]), &device);
        let fast: Vec<f32> = silu(x.clone()).into_data().try_into_vec().unwrap();
        let burn: Vec<f32> = burn::tensor::activation::silu(x).into_data().try_into_vec().unwrap();
        for ((v, f), b) in values.iter().zip(&fast).zip(&burn) {
            assert_eq!(*f, silu_f32(*v));
            assert!((f - b).abs() <= 1e-6 * b.abs().max(1.0), "silu({v}): {f} against Burn's {b}");
        }
    }

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
