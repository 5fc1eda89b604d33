//! Interpolation through the prior (Song et al. 2021, §4.3): encode two images with the
//! probability-flow ODE, interpolate their codes spherically, decode every point with the same
//! ODE. The ODE is a bijection, so the path starts and ends at (reconstructions of) the two images,
//! and every point in between is the decoding of a code as typical of the prior as the endpoints'.

use burn::prelude::*;

use super::ode::{encode_rk45, sample_rk45};
use super::{Flow, Observer, SampleError, ScoreFn, Step};
use crate::sde::Sde;

/// Most frames of one path (each is decoded in the same batch), and the page's and widget's.
pub const MAX_FRAMES: usize = 64;
pub const DEFAULT_FRAMES: usize = 9;

/// Spherical interpolation between codes `a` and `b` at λ ∈ [0, 1] (Shoemake 1985):
/// sin((1 − λ)θ)/sin θ · a + sin(λθ)/sin θ · b, θ the angle between them. High-dimensional
/// Gaussian codes are nearly orthogonal with nearly equal norms, so the path keeps the norm of a
/// typical prior sample where a straight line would pass through unlikely, too-small codes.
/// Nearly parallel codes fall back to the straight line.
pub fn slerp(a: &[f32], b: &[f32], lambda: f64) -> Vec<f32> {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let cos = (dot / (norm(a) * norm(b)).max(f64::MIN_POSITIVE)).clamp(-1.0, 1.0);
    let theta = cos.acos();
    let (wa, wb) = if theta.sin() < 1e-6 { (1.0 - lambda, lambda) } else { (((1.0 - lambda) * theta).sin() / theta.sin(), (lambda * theta).sin() / theta.sin()) };
    a.iter().zip(b).map(|(&x, &y)| (wa * x as f64 + wb * y as f64) as f32).collect()
}

/// An interpolation's result.
pub struct Path {
    /// The decoded frames [frames, C, H, W]: λ = 0 (the first image's reconstruction), …, λ = 1.
    pub frames: Tensor<4>,
    /// Root-mean-square difference between each image and its reconstruction (its code decoded).
    pub reconstruction_rms: [f64; 2],
    /// Score evaluations: encoding and decoding.
    pub evals: usize,
}

/// Encodes `images` [2, C, H, W], decodes `frames` (≥ 2) evenly spaced points of the spherical
/// path between their codes. The observer sees the encoding as the first half of the progress
/// and the decoding as the second.
pub async fn interpolate<S: ScoreFn, O: Observer>(score: &S, sde: &Sde, images: Tensor<4>, frames: usize, rtol: f64, atol: f64, observer: &mut O) -> Result<Path, SampleError> {
    let [n, c, h, w] = images.dims();
    if n != 2 {
        return Err(SampleError::invalid("images", format!("must be two images, got {n}")));
    }
    if !(2..=MAX_FRAMES).contains(&frames) {
        return Err(SampleError::invalid("frames", format!("must be in 2..={MAX_FRAMES}, got {frames}")));
    }
    super::validate_tolerances(rtol, atol)?;
    let device = images.device();
    let d = c * h * w;
    let counted = super::Counted::new(score);
    let codes = encode_rk45(&counted, sde, images.clone(), rtol, atol, &mut Half { inner: &mut *observer, second: false }).await?;
    let codes = read(codes).await?;
    let (a, b) = codes.split_at(d);
    let path: Vec<f32> = (0..frames).flat_map(|i| slerp(a, b, i as f64 / (frames - 1) as f64)).collect();
    let z = Tensor::<4>::from_data(TensorData::new(path, [frames, c, h, w]), &device);
    let decoded = sample_rk45(&counted, sde, z, rtol, atol, &mut Half { inner: &mut *observer, second: true }).await?;
    let ends = read(Tensor::cat(vec![decoded.clone().slice([0..1]), decoded.clone().slice([frames - 1..frames])], 0)).await?;
    let originals = read(images).await?;
    let rms = |k: usize| (ends[k * d..(k + 1) * d].iter().zip(&originals[k * d..(k + 1) * d]).map(|(&r, &x)| ((r - x) as f64).powi(2)).sum::<f64>() / d as f64).sqrt();
    Ok(Path { frames: decoded, reconstruction_rms: [rms(0), rms(1)], evals: counted.evals.get() })
}

async fn read(x: Tensor<4>) -> Result<Vec<f32>, SampleError> {
    let data = x.into_data_async().await.map_err(|e| SampleError::Readback(format!("{e:?}")))?;
    data.try_to_vec::<f32>().map_err(|e| SampleError::Readback(format!("{e:?}")))
}

/// Passes steps on with the progress mapped into the first or second half of [0, 1] (the
/// decoding runs from T down to ε, its own progress counting from 0 again).
struct Half<'a, O: Observer> {
    inner: &'a mut O,
    second: bool,
}

impl<O: Observer> Observer for Half<'_, O> {
    async fn observe(&mut self, s: Step<'_>) -> Flow {
        let progress = if self.second { 0.5 + 0.5 * s.progress } else { 0.5 * s.progress };
        self.inner.observe(Step { progress, ..s }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// slerp keeps the endpoints, moves along the great circle (the norm of orthogonal unit codes
    /// stays 1 where the straight line's midpoint has norm 1/√2), and is linear for parallel codes.
    #[test]
    fn slerp_stays_on_the_sphere_between_its_endpoints() {
        let (a, b) = (vec![1.0f32, 0.0], vec![0.0f32, 1.0]);
        assert_eq!(slerp(&a, &b, 0.0), a);
        let end = slerp(&a, &b, 1.0);
        assert!((end[0] - b[0]).abs() < 1e-6 && (end[1] - b[1]).abs() < 1e-6, "{end:?}");
        let mid = slerp(&a, &b, 0.5);
        assert!((mid[0].hypot(mid[1]) - 1.0).abs() < 1e-6 && (mid[0] - mid[1]).abs() < 1e-6, "{mid:?}");
        assert_eq!(slerp(&[2.0, 2.0], &[4.0, 4.0], 0.5), vec![3.0, 3.0]);
    }
}
