//! The forward SDEs of Song et al. 2021, "Score-Based Generative Modeling through Stochastic
//! Differential Equations" (ICLR 2021), section 3.4 and appendix B.
//!
//! All three SDEs are linear in x, `dx = f(t)·x dt + g(t) dw`, so the SDE answers with scalar
//! coefficients for a time `t` shared by the whole batch; the samplers multiply tensors by them.
//! Samplers never ask which SDE they run on: they ask the SDE.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// σ_min of the VE SDE (Song et al. 2021, appendix C: 0.01 for all image experiments).
pub const VE_SIGMA_MIN: f64 = 0.01;
/// σ_max of the VE SDE. The paper picks it as the largest pairwise distance in the data set
/// (Song & Ermon 2020, "Improved techniques", technique 1): 50 for CIFAR-10; MNIST (784 pixels in
/// [0,1]) has pairwise distances below 20, so 50 is safe there too.
pub const VE_SIGMA_MAX: f64 = 50.0;
/// β_min of the VP and sub-VP SDEs (Song et al. 2021, appendix C; = 0.1, the DDPM schedule ×N).
pub const VP_BETA_MIN: f64 = 0.1;
/// β_max of the VP and sub-VP SDEs (Song et al. 2021, appendix C; = 20).
pub const VP_BETA_MAX: f64 = 20.0;
/// Sampling ends at t = ε: 1e-5 for VE (score_sde `sampling_eps` of the VE configs).
pub const VE_EPS: f64 = 1e-5;
/// Sampling ends at t = ε: 1e-3 for VP and sub-VP (score_sde `sampling_eps` of the VP configs).
pub const VP_EPS: f64 = 1e-3;
/// The SDEs run on t ∈ [ε, T] with T = 1.
pub const T_END: f64 = 1.0;

/// A forward SDE, tagged by `type` in JSON (`{"type": "ve", "sigma_min": 0.01, "sigma_max": 50}`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Sde {
    /// Variance exploding: `dx = sqrt(d[σ²(t)]/dt) dw`, σ(t) = σ_min (σ_max/σ_min)^t (eq. 30).
    Ve { sigma_min: f64, sigma_max: f64 },
    /// Variance preserving: `dx = -½β(t)x dt + sqrt(β(t)) dw`, β(t) = β_min + t(β_max − β_min)
    /// (eq. 32).
    Vp { beta_min: f64, beta_max: f64 },
    /// Sub-variance preserving: `dx = -½β(t)x dt + sqrt(β(t)(1 − e^{−2∫β})) dw` (eq. 34).
    SubVp { beta_min: f64, beta_max: f64 },
}

impl Sde {
    /// VE SDE with the paper's σ_min and the given σ_max.
    pub fn ve(sigma_max: f64) -> Self {
        Sde::Ve { sigma_min: VE_SIGMA_MIN, sigma_max }
    }

    /// VP SDE with the paper's β_min, β_max.
    pub fn vp() -> Self {
        Sde::Vp { beta_min: VP_BETA_MIN, beta_max: VP_BETA_MAX }
    }

    /// Sub-VP SDE with the paper's β_min, β_max.
    pub fn sub_vp() -> Self {
        Sde::SubVp { beta_min: VP_BETA_MIN, beta_max: VP_BETA_MAX }
    }

    /// Short name as used in model cards and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Sde::Ve { .. } => "ve",
            Sde::Vp { .. } => "vp",
            Sde::SubVp { .. } => "sub-vp",
        }
    }

    /// Checks the parameters: positive, finite, ordered.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (lo, hi, names) = match *self {
            Sde::Ve { sigma_min, sigma_max } => (sigma_min, sigma_max, ("sde.sigma_min", "sde.sigma_max")),
            Sde::Vp { beta_min, beta_max } | Sde::SubVp { beta_min, beta_max } => {
                (beta_min, beta_max, ("sde.beta_min", "sde.beta_max"))
            }
        };
        if !(lo.is_finite() && lo > 0.0) {
            return Err(ConfigError::invalid(names.0, format!("must be a positive number, got {lo}")));
        }
        if !(hi.is_finite() && hi > lo) {
            return Err(ConfigError::invalid(names.1, format!("must be finite and larger than {lo}, got {hi}")));
        }
        Ok(())
    }

    /// The end time ε of sampling (the SDE is not integrated below it).
    pub fn eps(&self) -> f64 {
        match self {
            Sde::Ve { .. } => VE_EPS,
            Sde::Vp { .. } | Sde::SubVp { .. } => VP_EPS,
        }
    }

    /// σ(t) of the VE SDE: σ_min (σ_max/σ_min)^t. For VP/sub-VP: the marginal std.
    pub fn sigma(&self, t: f64) -> f64 {
        self.marginal(t).1
    }

    /// β(t) = β_min + t(β_max − β_min) of VP and sub-VP (0 for VE).
    fn beta(&self, t: f64) -> f64 {
        match *self {
            Sde::Ve { .. } => 0.0,
            Sde::Vp { beta_min, beta_max } | Sde::SubVp { beta_min, beta_max } => beta_min + t * (beta_max - beta_min),
        }
    }

    /// ∫_0^t β(s) ds.
    fn beta_integral(&self, t: f64) -> f64 {
        match *self {
            Sde::Ve { .. } => 0.0,
            Sde::Vp { beta_min, beta_max } | Sde::SubVp { beta_min, beta_max } => {
                beta_min * t + 0.5 * t * t * (beta_max - beta_min)
            }
        }
    }

    /// Drift coefficient: f(x, t) = `drift_coef(t)` · x.
    pub fn drift_coef(&self, t: f64) -> f64 {
        match self {
            Sde::Ve { .. } => 0.0,
            Sde::Vp { .. } | Sde::SubVp { .. } => -0.5 * self.beta(t),
        }
    }

    /// Diffusion coefficient g(t).
    pub fn diffusion(&self, t: f64) -> f64 {
        match *self {
            // g(t) = σ(t) sqrt(2 ln(σ_max/σ_min)) (eq. 30; score_sde `VESDE.sde`).
            Sde::Ve { sigma_min, sigma_max } => self.sigma(t) * (2.0 * (sigma_max / sigma_min).ln()).sqrt(),
            Sde::Vp { .. } => self.beta(t).sqrt(),
            // g(t)² = β(t)(1 − e^{−2∫β}) (eq. 34).
            Sde::SubVp { .. } => (self.beta(t) * (1.0 - (-2.0 * self.beta_integral(t)).exp())).sqrt(),
        }
    }

    /// Marginal of p_0t(x(t) | x(0)) = N(mean_coef · x(0), std² I): returns (mean_coef, std)
    /// (eqs. 29, 31, 33).
    pub fn marginal(&self, t: f64) -> (f64, f64) {
        match *self {
            Sde::Ve { sigma_min, sigma_max } => (1.0, sigma_min * (sigma_max / sigma_min).powf(t)),
            Sde::Vp { .. } => {
                let log_mean = -0.5 * self.beta_integral(t);
                (log_mean.exp(), (-(2.0 * log_mean).exp_m1()).sqrt())
            }
            Sde::SubVp { .. } => {
                let log_mean = -0.5 * self.beta_integral(t);
                (log_mean.exp(), -(2.0 * log_mean).exp_m1())
            }
        }
    }

    /// [`Sde::marginal`] for a batch of times t [B, 1] at once (training draws a time per sample).
    pub fn marginal_batch(&self, t: burn::prelude::Tensor<2>) -> (burn::prelude::Tensor<2>, burn::prelude::Tensor<2>) {
        match *self {
            Sde::Ve { sigma_min, sigma_max } => {
                let std = (t.clone() * (sigma_max / sigma_min).ln() + sigma_min.ln()).exp();
                (t.zeros_like() + 1.0, std)
            }
            Sde::Vp { beta_min, beta_max } | Sde::SubVp { beta_min, beta_max } => {
                // ∫β = β_min t + ½ t² (β_max − β_min); m = e^{−½∫β}.
                let integral = t.clone() * beta_min + t.powi_scalar(2) * (0.5 * (beta_max - beta_min));
                let mean = (integral.clone() * -0.5).exp();
                let var = -((integral * -1.0).exp()) + 1.0;
                let std = if matches!(self, Sde::Vp { .. }) { var.clamp_min(1e-12).sqrt() } else { var };
                (mean, std)
            }
        }
    }

    /// The noise level σ̂(t) = σ(t)/m(t) of the scaled state x(t)/m(t) = x(0) + σ̂(t)·z (Karras et
    /// al. 2022, §4: σ(t)/s(t)). It grows with t for every SDE here; VE: σ̂ = σ.
    pub fn noise_level(&self, t: f64) -> f64 {
        let (m, s) = self.marginal(t);
        s / m
    }

    /// The noise levels σ̂ the SDE spans, (σ̂(ε), σ̂(T)): where a σ̂-grid sampler starts and ends,
    /// and the range a consistency model is trained for.
    pub fn noise_levels(&self) -> (f64, f64) {
        (self.noise_level(self.eps()), self.noise_level(T_END))
    }

    /// The time t with [`Sde::noise_level`](t) = σ̂: closed form for VE (t may fall outside
    /// [0, 1] for σ̂ outside [σ_min, σ_max]), bisection for VP and sub-VP.
    pub fn time_of_noise_level(&self, sigma_hat: f64) -> f64 {
        match *self {
            Sde::Ve { sigma_min, sigma_max } => (sigma_hat / sigma_min).ln() / (sigma_max / sigma_min).ln(),
            Sde::Vp { .. } | Sde::SubVp { .. } => {
                let (mut lo, mut hi) = (0.0, T_END);
                while self.noise_level(hi) < sigma_hat && hi < 64.0 {
                    hi *= 2.0;
                }
                for _ in 0..200 {
                    let mid = 0.5 * (lo + hi);
                    if self.noise_level(mid) < sigma_hat { lo = mid } else { hi = mid }
                    if hi - lo <= f64::EPSILON * hi {
                        break;
                    }
                }
                0.5 * (lo + hi)
            }
        }
    }

    /// Standard deviation of the prior p_T the reverse process starts from.
    pub fn prior_std(&self) -> f64 {
        match *self {
            Sde::Ve { sigma_max, .. } => sigma_max,
            Sde::Vp { .. } | Sde::SubVp { .. } => 1.0,
        }
    }

    /// log N(x; 0, prior_std² I) for a sample with `dim` coordinates and squared norm `sq_norm`.
    pub fn prior_logp(&self, sq_norm: f64, dim: usize) -> f64 {
        let s2 = self.prior_std().powi(2);
        -0.5 * dim as f64 * (2.0 * std::f64::consts::PI * s2).ln() - 0.5 * sq_norm / s2
    }

    /// One step of the discretised forward SDE from `t_next` up to `t` (t > t_next), as
    /// `x_t = x_next + f_i(x_next) + G_i z` with `f_i = coef · x`: returns (coef, G_i).
    ///
    /// VE: the SMLD chain, f = 0, G = sqrt(σ(t)² − σ(t_next)²) (Song et al. 2021, eq. 45).
    /// VP: the DDPM chain with 1 − β_i = ᾱ(t)/ᾱ(t_next), f = (sqrt(1 − β_i) − 1)x, G = sqrt(β_i)
    /// (eq. 46). Sub-VP: the Euler–Maruyama discretisation, f = f(t)Δt, G = g(t) sqrt(Δt).
    pub fn discretize(&self, t: f64, t_next: f64) -> (f64, f64) {
        match self {
            Sde::Ve { .. } => (0.0, (self.sigma(t).powi(2) - self.sigma(t_next).powi(2)).max(0.0).sqrt()),
            Sde::Vp { .. } => {
                let beta_i = self.discrete_beta(t, t_next);
                ((1.0 - beta_i).sqrt() - 1.0, beta_i.sqrt())
            }
            Sde::SubVp { .. } => {
                let dt = t - t_next;
                (self.drift_coef(t) * dt, self.diffusion(t) * dt.sqrt())
            }
        }
    }

    /// β_i of the DDPM chain between t_next < t: 1 − ᾱ(t)/ᾱ(t_next), ᾱ = mean_coef².
    fn discrete_beta(&self, t: f64, t_next: f64) -> f64 {
        -(-(self.beta_integral(t) - self.beta_integral(t_next))).exp_m1()
    }

    /// α_i of the Langevin corrector (Song et al. 2021, algorithms 4 and 5): 1 for VE and
    /// sub-VP, 1 − β_i for VP.
    pub fn langevin_alpha(&self, t: f64, t_next: f64) -> f64 {
        match self {
            Sde::Vp { .. } => 1.0 - self.discrete_beta(t, t_next),
            Sde::Ve { .. } | Sde::SubVp { .. } => 1.0,
        }
    }

    /// Coefficients of the reverse-time SDE drift `f(x,t) − g(t)² s(x,t)` (eq. 6) as
    /// (coefficient of x, coefficient of the score).
    pub fn reverse_drift_coefs(&self, t: f64) -> (f64, f64) {
        (self.drift_coef(t), -self.diffusion(t).powi(2))
    }

    /// Coefficients of the probability-flow ODE drift `f(x,t) − ½ g(t)² s(x,t)` (eq. 13) as
    /// (coefficient of x, coefficient of the score).
    pub fn ode_drift_coefs(&self, t: f64) -> (f64, f64) {
        (self.drift_coef(t), -0.5 * self.diffusion(t).powi(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> [Sde; 3] {
        [Sde::ve(VE_SIGMA_MAX), Sde::vp(), Sde::sub_vp()]
    }

    /// The marginal variance obeys dΣ/dt = 2f Σ + g² (Särkkä & Solin, eq. 5.51 for linear SDEs;
    /// Song et al. 2021 eq. 33 is its solution), checked by central differences.
    #[test]
    fn marginal_variance_solves_its_ode() {
        for sde in all() {
            for &t in &[0.05, 0.3, 0.7, 0.95] {
                let h = 1e-6;
                let var = |t: f64| sde.marginal(t).1.powi(2);
                let dvar = (var(t + h) - var(t - h)) / (2.0 * h);
                let rhs = 2.0 * sde.drift_coef(t) * var(t) + sde.diffusion(t).powi(2);
                assert!((dvar - rhs).abs() < 1e-4 * rhs.abs().max(1.0), "{sde:?} t={t}: {dvar} vs {rhs}");
                // The mean coefficient obeys dm/dt = f m.
                let m = |t: f64| sde.marginal(t).0;
                let dm = (m(t + h) - m(t - h)) / (2.0 * h);
                assert!((dm - sde.drift_coef(t) * m(t)).abs() < 1e-6, "{sde:?} t={t}");
            }
        }
    }

    /// Over the whole discretised chain the variances add up to the marginal: VE σ_i² telescopes,
    /// VP ∏(1 − β_i) = ᾱ(T)/ᾱ(ε).
    #[test]
    fn discretisation_matches_marginals() {
        let n = 100;
        for sde in [Sde::ve(VE_SIGMA_MAX), Sde::vp()] {
            let eps = sde.eps();
            // Propagate (mean coef, variance) of x(t) given x(eps) up the chain.
            let (mut m, mut v) = (1.0, 0.0);
            for i in 0..n {
                let t_next = eps + (1.0 - eps) * i as f64 / n as f64;
                let t = eps + (1.0 - eps) * (i + 1) as f64 / n as f64;
                let (f, g) = sde.discretize(t, t_next);
                m *= 1.0 + f;
                v = (1.0 + f).powi(2) * v + g * g;
            }
            let (m0, s0) = sde.marginal(eps);
            let (m1, s1) = sde.marginal(1.0);
            // x(1) = (m1/m0) x(eps) + noise with variance s1² − (m1/m0)² s0².
            assert!((m - m1 / m0).abs() < 1e-9, "{sde:?}");
            let want = s1 * s1 - (m1 / m0).powi(2) * s0 * s0;
            assert!((v - want).abs() < 1e-9 * want.max(1.0), "{sde:?}: {v} vs {want}");
        }
    }

    /// t(σ̂(t)) = t for every SDE, across [ε, 1].
    #[test]
    fn time_of_noise_level_inverts_noise_level() {
        for sde in all() {
            for &t in &[sde.eps(), 0.01, 0.3, 0.77, 1.0] {
                let back = sde.time_of_noise_level(sde.noise_level(t));
                assert!((back - t).abs() < 1e-9, "{sde:?}: t = {t} came back as {back}");
            }
        }
    }

    #[test]
    fn paper_defaults_and_validation() {
        assert_eq!(Sde::vp(), Sde::Vp { beta_min: 0.1, beta_max: 20.0 });
        assert!((Sde::ve(50.0).sigma(1.0) - 50.0).abs() < 1e-9);
        assert!((Sde::ve(50.0).sigma(0.0) - 0.01).abs() < 1e-12);
        assert!(Sde::Ve { sigma_min: 0.0, sigma_max: 1.0 }.validate().is_err());
        assert!(Sde::Vp { beta_min: 0.1, beta_max: f64::NAN }.validate().is_err());
        let json = serde_json::to_string(&Sde::sub_vp()).unwrap();
        assert_eq!(json, r#"{"type":"sub-vp","beta_min":0.1,"beta_max":20.0}"#);
        assert_eq!(serde_json::from_str::<Sde>(&json).unwrap(), Sde::sub_vp());
    }
}
