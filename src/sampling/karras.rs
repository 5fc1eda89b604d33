//! Samplers on a grid of noise levels instead of times (Karras et al. 2022, "Elucidating the
//! Design Space of Diffusion-Based Generative Models"; Lu et al. 2022, "DPM-Solver++"): both
//! integrate the probability-flow ODE written in the noise level σ̂,
//!
//! dx̂/dσ̂ = (x̂ − D(x̂; σ̂))/σ̂   (Karras et al. 2022, eq. 3 with s(t) = 1),
//!
//! for the scaled state x̂ = x(t)/m(t) and σ̂(t) = σ(t)/m(t), so they run on every SDE: VE has
//! m = 1 and σ̂ = σ. The denoiser comes from the score by Tweedie's formula,
//! D(x̂; σ̂) = (x + σ² s(x, t))/m with x = m·x̂ and t = t(σ̂).
//!
//! The grid ends at σ = 0, so the last step returns a denoised sample: no separate denoising
//! step follows.

use burn::prelude::*;

use super::{Flow, Known, Noise, Observer, SampleError, Sampler, ScoreFn, Step};
use crate::sde::{Sde, T_END};

/// ρ of the noise-level grid (Karras et al. 2022, eq. 5: ρ = 7).
pub const DEFAULT_RHO: f64 = 7.0;
/// Stochasticity of `edm-heun`: S_churn = 0 is the deterministic Heun solver (alg. 1 on the
/// same grid). EDM's own stochastic settings are S_churn 30–80 (table 5).
pub const DEFAULT_CHURN: f64 = 0.0;
/// Churn acts only for σ̂ in [S_tmin, S_tmax], with noise inflated by S_noise (Karras et al.
/// 2022, table 5, ImageNet-64: 0.05, 50, 1.003).
pub const DEFAULT_S_TMIN: f64 = 0.05;
pub const DEFAULT_S_TMAX: f64 = 50.0;
pub const DEFAULT_S_NOISE: f64 = 1.003;

/// The stochasticity of `edm-heun` (Karras et al. 2022, algorithm 2): at each step with σ_i in
/// [S_tmin, S_tmax] the level is raised by γ = min(S_churn/N, √2 − 1) with fresh noise scaled by
/// S_noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Churn {
    pub s_churn: f64,
    pub s_tmin: f64,
    pub s_tmax: f64,
    pub s_noise: f64,
}

impl Default for Churn {
    fn default() -> Self {
        Self { s_churn: DEFAULT_CHURN, s_tmin: DEFAULT_S_TMIN, s_tmax: DEFAULT_S_TMAX, s_noise: DEFAULT_S_NOISE }
    }
}

impl Churn {
    /// γ_i for a step from σ of a run of N steps.
    pub fn gamma(&self, sigma: f64, n: usize) -> f64 {
        if self.s_churn > 0.0 && (self.s_tmin..=self.s_tmax).contains(&sigma) {
            (self.s_churn / n as f64).min(std::f64::consts::SQRT_2 - 1.0)
        } else {
            0.0
        }
    }
}

/// The noise levels σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ for i < N, and
/// σ_N = 0 (Karras et al. 2022, eq. 5): N + 1 values, N steps. With N = 1 the single level is
/// σ_max.
pub fn karras_sigmas(n: usize, sigma_min: f64, sigma_max: f64, rho: f64) -> Vec<f64> {
    let (lo, hi) = (sigma_min.powf(1.0 / rho), sigma_max.powf(1.0 / rho));
    let mut sigmas: Vec<f64> = (0..n).map(|i| {
        let frac = if n > 1 { i as f64 / (n - 1) as f64 } else { 0.0 };
        (hi + frac * (lo - hi)).powf(rho)
    }).collect();
    sigmas.push(0.0);
    sigmas
}

/// The grid for an SDE: from σ̂(T) down to σ̂(ε), then 0.
pub fn sde_sigmas(sde: &Sde, n: usize, rho: f64) -> Vec<f64> {
    let (min, max) = sde.noise_levels();
    karras_sigmas(n, min, max, rho)
}

/// D(x̂; σ̂) from the score (Tweedie): (m·x̂ + σ²·s(m·x̂, t))/m at the t where σ(t)/m(t) = σ̂.
fn denoise<S: ScoreFn>(score: &S, sde: &Sde, x_hat: Tensor<4>, sigma_hat: f64) -> Tensor<4> {
    let t = sde.time_of_noise_level(sigma_hat);
    let (m, sigma) = sde.marginal(t);
    let x = x_hat * m;
    (x.clone() + score.score(x, t) * (sigma * sigma)) / m
}

/// Reports a finished step to the observer, with x in the SDE's space and the current denoised
/// estimate as the preview.
pub(super) async fn report<O: Observer>(observer: &mut O, sde: &Sde, sampler: Sampler, step: usize, total: usize, sigma_next: f64, x_hat: &Tensor<4>, denoised: &Tensor<4>) -> Result<(), SampleError> {
    let eps = sde.eps();
    let t = if sigma_next > 0.0 { sde.time_of_noise_level(sigma_next).clamp(eps, T_END) } else { eps };
    let m = sde.marginal(t).0;
    let x = x_hat.clone() * m;
    let progress = if step == total { 1.0 } else { ((T_END - t) / (T_END - eps)).clamp(0.0, 1.0) };
    match observer.observe(Step { step, total: Some(total), t, progress, x: &x, x_mean: denoised }).await {
        Flow::Continue => Ok(()),
        Flow::Cancel => Err(SampleError::Cancelled { step }),
        Flow::NonFinite => Err(sampler.non_finite(step, t)),
    }
}

/// Heun's second-order method on the σ grid with optional stochastic churn (Karras et al.
/// 2022, algorithm 2). Each step:
///
/// γ = min(S_churn/N, √2 − 1) if σ_i ∈ [S_tmin, S_tmax] else 0;  σ̂ = σ_i(1 + γ);
/// x̂ = x_i + √(σ̂² − σ_i²)·S_noise·ε;  d = (x̂ − D(x̂; σ̂))/σ̂;  x_{i+1} = x̂ + (σ_{i+1} − σ̂)·d;
/// if σ_{i+1} ≠ 0: d′ = (x_{i+1} − D(x_{i+1}; σ_{i+1}))/σ_{i+1},  x_{i+1} = x̂ + (σ_{i+1} − σ̂)(d + d′)/2.
///
/// 2N − 1 score evaluations for N steps (the last step, to σ = 0, is an Euler step).
/// `x` is x(T) in the SDE's space. With `known`, the known pixels are re-imposed after every
/// step ([`Known::constrain_scaled`]).
pub async fn edm_heun<S: ScoreFn, O: Observer>(score: &S, sde: &Sde, x: Tensor<4>, sigmas: &[f64], churn: &Churn, known: Option<&Known>, noise: &mut Noise, observer: &mut O) -> Result<Tensor<4>, SampleError> {
    let n = sigmas.len() - 1;
    let mut x = x / sde.marginal(T_END).0; // x̂ at σ̂(T)
    for i in 0..n {
        let (sigma, sigma_next) = (sigmas[i], sigmas[i + 1]);
        let gamma = churn.gamma(sigma, n);
        let sigma_hat = sigma * (1.0 + gamma);
        let x_hat = if gamma > 0.0 { x.clone() + noise.normal_like(&x) * ((sigma_hat * sigma_hat - sigma * sigma).sqrt() * churn.s_noise) } else { x };
        let denoised = denoise(score, sde, x_hat.clone(), sigma_hat);
        let d = (x_hat.clone() - denoised.clone()) / sigma_hat;
        x = x_hat.clone() + d.clone() * (sigma_next - sigma_hat);
        let mut preview = denoised;
        if sigma_next > 0.0 {
            let denoised_next = denoise(score, sde, x.clone(), sigma_next);
            let d_next = (x.clone() - denoised_next.clone()) / sigma_next;
            x = x_hat + (d + d_next) * (0.5 * (sigma_next - sigma_hat));
            preview = denoised_next;
        }
        if let Some(known) = known {
            x = known.constrain_scaled(x, sigma_next);
            preview = known.paste(preview);
        }
        report(observer, sde, Sampler::EdmHeun, i + 1, n, sigma_next, &x, &preview).await?;
    }
    Ok(x)
}

/// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", algorithm 2): a second-order multistep
/// solver of the data-prediction ODE in λ = −ln σ̂. With h_i = λ_{i+1} − λ_i and D_i = D(x_i; σ_i):
///
/// first step: x_{i+1} = (σ_{i+1}/σ_i)·x_i − (e^{−h_i} − 1)·D_i;
/// later ones: r = h_{i−1}/h_i, D̃ = (1 + 1/(2r))·D_i − (1/(2r))·D_{i−1}, and D̃ in place of D_i;
/// the last step, to σ = 0, returns D_i.
///
/// N score evaluations for N steps. With `known`, the known pixels are re-imposed after every
/// step ([`Known::constrain_scaled`]).
pub async fn dpmpp_2m<S: ScoreFn, O: Observer>(score: &S, sde: &Sde, x: Tensor<4>, sigmas: &[f64], known: Option<&Known>, observer: &mut O) -> Result<Tensor<4>, SampleError> {
    let n = sigmas.len() - 1;
    let mut x = x / sde.marginal(T_END).0;
    let mut previous: Option<(Tensor<4>, f64)> = None; // (D_{i−1}, h_{i−1})
    for i in 0..n {
        let (sigma, sigma_next) = (sigmas[i], sigmas[i + 1]);
        let denoised = denoise(score, sde, x.clone(), sigma);
        if sigma_next == 0.0 {
            x = denoised.clone();
        } else {
            let h = (sigma / sigma_next).ln();
            let target = match &previous {
                None => denoised.clone(),
                Some((old, h_last)) => {
                    let r = h_last / h;
                    denoised.clone() * (1.0 + 0.5 / r) - old.clone() * (0.5 / r)
                }
            };
            // −(e^{−h} − 1) = 1 − σ_{i+1}/σ_i.
            x = x * (sigma_next / sigma) + target * (-(-h).exp_m1());
            previous = Some((denoised.clone(), h));
        }
        let mut preview = denoised;
        if let Some(known) = known {
            x = known.constrain_scaled(x, sigma_next);
            preview = known.paste(preview);
        }
        report(observer, sde, Sampler::DpmSolver2M, i + 1, n, sigma_next, &x, &preview).await?;
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Algorithm 2's γ_i: min(S_churn/N, √2 − 1) for σ_i in [S_tmin, S_tmax] (both ends
    /// included), 0 outside it and for S_churn = 0.
    #[test]
    fn churn_acts_only_between_s_tmin_and_s_tmax() {
        let churn = Churn { s_churn: 4.0, s_tmin: 0.1, s_tmax: 10.0, s_noise: 1.0 };
        assert_eq!(churn.gamma(1.0, 10), 0.4);
        assert_eq!(churn.gamma(0.1, 10), 0.4);
        assert_eq!(churn.gamma(10.0, 10), 0.4);
        assert_eq!(churn.gamma(0.099, 10), 0.0);
        assert_eq!(churn.gamma(10.01, 10), 0.0);
        assert_eq!(churn.gamma(1.0, 2), std::f64::consts::SQRT_2 - 1.0);
        assert_eq!(Churn { s_churn: 0.0, ..churn }.gamma(1.0, 10), 0.0);
        let d = Churn::default();
        assert_eq!((d.s_tmin, d.s_tmax, d.s_noise), (0.05, 50.0, 1.003));
    }

    /// Eq. 5 at its ends and in between: σ_0 = σ_max, σ_{N−1} = σ_min, σ_N = 0, decreasing, and
    /// the ρ-th roots are evenly spaced.
    #[test]
    fn karras_grid_ends_and_spacing() {
        let s = karras_sigmas(18, 0.002, 80.0, 7.0);
        assert_eq!(s.len(), 19);
        assert!((s[0] - 80.0).abs() < 1e-9 && (s[17] - 0.002).abs() < 1e-12 && s[18] == 0.0);
        assert!(s.windows(2).all(|w| w[0] > w[1]));
        let roots: Vec<f64> = s[..18].iter().map(|v| v.powf(1.0 / 7.0)).collect();
        let step = roots[1] - roots[0];
        assert!(roots.windows(2).all(|w| ((w[1] - w[0]) - step).abs() < 1e-12));
    }
}
