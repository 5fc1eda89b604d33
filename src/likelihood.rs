//! Exact log-likelihood through the probability-flow ODE (Song et al. 2021, §4.3 and appendix D.2;
//! the instantaneous change of variables of Chen et al. 2018, "Neural ODEs"):
//!
//! log p_0(x(0)) = log p_T(x(T)) + ∫_0^T ∇·f̃(x(t), t) dt,   f̃ = f − ½ g² s_θ,
//!
//! integrated from ε to T with RK45, the divergence estimated by Hutchinson's trace estimator
//! ∇·f̃ ≈ vᵀ (∂f̃/∂x) v with Rademacher probes v (one per image by default, as score_sde), each
//! fixed over the solve (Grathwohl et al. 2019, FFJORD). vᵀ ∂f̃/∂x comes from one reverse-mode pass through the score network.
//!
//! Bits per dimension of 8-bit images use uniform dequantisation: u = (k + U)/256 with U ~ U[0,1)
//! maps the pixel value k ∈ {0..255} into [0, 1], then linearly into the model's data range [a, b];
//! the discrete log-probability is bounded below by log p(u) − D log 256 (Theis et al. 2016), so
//! bits/dim = −(log p_y(y) + D ln(b − a)) / (D ln 2) + 8.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::SampleError;
use crate::sampling::ode::solve_rk45;
use crate::sampling::pc::ode_drift;
use crate::sampling::{Observer, ScoreFn, Step, DEFAULT_ODE_TOL};
use crate::sde::{Sde, T_END};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LikelihoodOptions {
    pub rtol: f64,
    pub atol: f64,
    /// Seed of the Hutchinson probes.
    pub seed: u64,
    /// Hutchinson probes per image; their estimates are averaged (variance / probes).
    pub probes: usize,
}

/// score_sde's protocol, used by the evaluation, the CLI and the browser alike: RK45 at
/// rtol = atol = 10⁻⁵, one probe. On the shipped model one 28×28 digit takes about 200
/// evaluations (docs/EVALUATION.md, "Likelihood in the browser").
impl Default for LikelihoodOptions {
    fn default() -> Self {
        Self { rtol: DEFAULT_ODE_TOL, atol: DEFAULT_ODE_TOL, seed: 0, probes: 1 }
    }
}

/// Per-image log-densities, in nats, of the images in the model's data space.
#[derive(Clone, Debug)]
pub struct Likelihood {
    pub logp: Vec<f64>,
    /// Score-network evaluations (each one forward and one backward pass).
    pub evals: usize,
    /// Accepted RK45 steps.
    pub steps: usize,
    pub dim: usize,
}

impl Likelihood {
    /// Continuous bits/dim: −log p / (D ln 2).
    pub fn bits_per_dim(&self) -> Vec<f64> {
        self.logp.iter().map(|lp| -lp / (self.dim as f64 * std::f64::consts::LN_2)).collect()
    }

    /// Bits/dim of 8-bit data dequantised into the data range `range` (see the module docs).
    pub fn dequantized_bits_per_dim(&self, range: [f32; 2]) -> Vec<f64> {
        let d = self.dim as f64;
        let width = (range[1] - range[0]) as f64;
        self.logp.iter().map(|lp| -(lp + d * width.ln()) / (d * std::f64::consts::LN_2) + 8.0).collect()
    }
}

/// Uniform dequantisation of 8-bit pixel values into `range`: (k + U)/256 · (b − a) + a.
pub fn dequantize(pixels: &[u8], range: [f32; 2], seed: u64) -> Vec<f32> {
    let mut rng = crate::rng::SplitMix::new(seed);
    pixels.iter().map(|&k| (k as f32 + rng.uniform_f32()) / 256.0 * (range[1] - range[0]) + range[0]).collect()
}

/// The Rademacher probes v ∈ {−1, 1}^D of `rows` ODE states, drawn on the host from `seed`
/// (SplitMix64's top bit per entry): the same signs on every backend and platform, so that the
/// browser (CPU or WebGPU) and the CLI estimate the same divergence for the same image and seed.
pub fn probes(seed: u64, rows: usize, dim: usize) -> Vec<f32> {
    let mut rng = crate::rng::SplitMix::new(crate::rng::mix(seed ^ PROBE_STREAM));
    (0..rows * dim).map(|_| if rng.next_u64() >> 63 == 0 { 1.0 } else { -1.0 }).collect()
}

/// Separates the probes' stream from the dequantisation noise's, which [`dequantize`] draws from
/// the same seed.
const PROBE_STREAM: u64 = 0x7072_6f62_6573_0001;

/// log p_0(x) for each image of `x` [B, C, H, W] (values in the model's data space).
///
/// `observer` sees each accepted RK45 step: x(t) on its way from the data (t = ε) to the prior
/// (t = T), `progress` = (t − ε)/(T − ε); it can cancel the solve.
pub async fn log_likelihood<S: ScoreFn, O: Observer>(score: &S, sde: &Sde, x: Tensor<4>, options: &LikelihoodOptions, observer: &mut O) -> Result<Likelihood, SampleError> {
    crate::sampling::validate_tolerances(options.rtol, options.atol)?;
    if !(1..=64).contains(&options.probes) {
        return Err(SampleError::invalid("probes", format!("must be in 1..=64, got {}", options.probes)));
    }
    let [images, c, h, w] = x.dims();
    crate::sampling::validate_batch([images * options.probes, c, h, w])?;
    // K probes per image: the batch repeated K times, each copy with its own probe.
    let x = Tensor::cat(vec![x; options.probes], 0);
    let shape = x.dims();
    let b = shape[0];
    let d = c * h * w;
    let device = x.device();
    let probe = Tensor::<4>::from_data(TensorData::new(probes(options.seed, b, d), shape), &device);

    // Augmented state [x, ∫ div] as [B, D + 1].
    let rhs = |t: f64, y: Tensor<2>| {
        let x = y.slice([0..b, 0..d]).reshape(shape);
        let x = x.without_autodiff().autodiff().require_grad();
        let drift = ode_drift(score, sde, x.clone(), t); // [B, C, H, W]
        let vjp_target = (drift.clone() * probe.clone()).sum(); // Σ_b vᵀ f̃(x_b): samples are independent
        let grads = vjp_target.backward();
        let v_jac = x.grad(&grads).expect("x requires grad"); // vᵀ ∂f̃/∂x, [B, C, H, W]
        let divergence = (v_jac * probe.clone()).sum_dims(&[1, 2, 3]).reshape([b, 1]); // [B, 1]
        let drift = drift.without_autodiff().reshape([b, d]);
        Tensor::cat(vec![drift, divergence], 1) // [B, D + 1]
    };
    let y0 = Tensor::cat(vec![x.reshape([b, d]), Tensor::zeros([b, 1], &device)], 1);
    let eps = sde.eps();
    let on_step = async |step: usize, t: f64, y: &Tensor<2>| {
        let x = y.clone().slice([0..b, 0..d]).reshape(shape);
        observer.observe(Step { step, total: None, t, progress: (t - eps) / (T_END - eps), x: &x, x_mean: &x }).await
    };
    let solution = solve_rk45(rhs, y0, eps, T_END, options.rtol, options.atol, on_step).await?;

    let y = solution.y.into_data_async().await.map_err(|e| SampleError::Readback(format!("{e:?}")))?;
    let y: Vec<f32> = y.try_to_vec::<f32>().map_err(|e| SampleError::Readback(format!("{e:?}")))?;
    let mut logp = vec![0.0; images];
    let k = options.probes as f64;
    for (i, row) in y.chunks(d + 1).enumerate() {
        let sq_norm: f64 = row[..d].iter().map(|&v| (v as f64) * (v as f64)).sum();
        let prior = sde.prior_logp(sq_norm, d);
        let delta = row[d] as f64;
        if !(prior.is_finite() && delta.is_finite()) {
            return Err(SampleError::NonFinite { sampler: "likelihood", step: solution.accepted, t: T_END, advice: "try a smaller rtol and atol, or check the image's values" });
        }
        logp[i % images] += (prior + delta) / k;
    }
    Ok(Likelihood { logp, evals: solution.evals, steps: solution.accepted, dim: d })
}

/// The page's reference likelihoods (`scorefield likelihood --references`): a few 8-bit images
/// with the bits/dim the CLI measured for them with `options`, and the weights they belong to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct References {
    pub format: String,
    pub version: u32,
    /// The model card's name.
    pub model: String,
    /// SHA-256 of the weights file the values were measured with.
    pub weights_sha256: String,
    pub options: LikelihoodOptions,
    pub images: Vec<Reference>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// What the page calls it in code (`held-out`, `scribble`, `noise`).
    pub name: String,
    /// What the page shows.
    pub label: String,
    /// C·H·W 8-bit pixels, row-major.
    pub pixels: Vec<u8>,
    /// Dequantised bits/dim, dequantisation and probes from `options.seed`.
    pub bits_per_dim: f64,
    pub evals: usize,
}

pub const REFERENCES_FORMAT: &str = "scorefield-likelihood-references";
pub const REFERENCES_VERSION: u32 = 1;

impl References {
    pub fn new(model: &str, weights_sha256: String, options: LikelihoodOptions, images: Vec<Reference>) -> Self {
        Self { format: REFERENCES_FORMAT.into(), version: REFERENCES_VERSION, model: model.into(), weights_sha256, options, images }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("references serialise")
    }
}

/// A hand-drawn-looking scribble of `h`×`w` 8-bit pixels: a pen that wanders with a smoothly
/// turning heading (turns ~ N(0, 0.3²) rad per half pixel), bouncing off a 4-pixel margin (less
/// on images under 17 pixels a side: a quarter of the side), drawn with a soft round nib about as
/// wide as an MNIST stroke.
pub fn scribble(h: usize, w: usize, seed: u64) -> Vec<u8> {
    let mut rng = crate::rng::SplitMix::new(crate::rng::mix(seed ^ 0x7363_7269_6262_6c65));
    let margin = 4.0f64.min((h.min(w) as f64 - 1.0) / 4.0);
    let (lo_x, hi_x, lo_y, hi_y) = (margin, w as f64 - 1.0 - margin, margin, h as f64 - 1.0 - margin);
    let mut x = lo_x + rng.uniform() * (hi_x - lo_x);
    let mut y = lo_y + rng.uniform() * (hi_y - lo_y);
    let mut heading = rng.uniform() * std::f64::consts::TAU;
    let mut ink = vec![0.0f64; h * w];
    for _ in 0..120 {
        heading += 0.3 * rng.normal();
        let (nx, ny) = (x + 0.5 * heading.cos(), y + 0.5 * heading.sin());
        if !(lo_x..=hi_x).contains(&nx) {
            heading = std::f64::consts::PI - heading;
        }
        if !(lo_y..=hi_y).contains(&ny) {
            heading = -heading;
        }
        x = (x + 0.5 * heading.cos()).clamp(lo_x, hi_x);
        y = (y + 0.5 * heading.sin()).clamp(lo_y, hi_y);
        for (i, v) in ink.iter_mut().enumerate() {
            let d = (((i % w) as f64 - x).powi(2) + ((i / w) as f64 - y).powi(2)).sqrt();
            *v = v.max((1.8 - d).clamp(0.0, 1.0));
        }
    }
    ink.iter().map(|v| (v * 255.0).round() as u8).collect()
}

/// `n` uniformly random 8-bit pixels.
pub fn uniform_noise(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = crate::rng::SplitMix::new(crate::rng::mix(seed ^ 0x6e6f_6973_6500_0000));
    (0..n).map(|_| (rng.next_u64() >> 56) as u8).collect()
}
