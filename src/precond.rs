//! How a network's output becomes a denoiser: the parameterisation, stored in the model card.
//!
//! EDM (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative
//! Models", §5 and table 1) writes the denoiser as
//!
//! D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x, c_noise(σ)),
//!
//! c_skip = σ_d²/(σ² + σ_d²), c_out = σ·σ_d/√(σ² + σ_d²), c_in = 1/√(σ² + σ_d²), c_noise = ¼ ln σ,
//!
//! chosen so that F's input and its training target both have unit variance at every σ. The
//! older parameterisation of Song et al. 2021 (the network predicts −z, the noise in units of σ;
//! score = net(x, t)/σ(t)) is kept so that version-1 model cards still load.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// EDM's training distribution of σ: ln σ ~ N(P_mean, P_std²) (Karras et al. 2022, table 1).
pub const EDM_P_MEAN: f64 = -1.2;
/// See [`EDM_P_MEAN`].
pub const EDM_P_STD: f64 = 1.2;

/// EDM's σ_data, the std of the data its preconditioning assumes when none was measured (Karras et
/// al. 2022, table 1: 0.5; the trainer measures it on the training digits instead).
pub const EDM_SIGMA_DATA: f64 = 0.5;

/// σ_min of the noise levels (Karras et al. 2022, §5: 0.002). It also bounds the bits/dim of
/// 8-bit data from below by 8 + log2(σ_min·√(2π)) = 0.36 (docs/EVALUATION.md), where the
/// version-1 model's σ_min = 0.01 gave 2.68.
pub const EDM_SIGMA_MIN: f64 = 0.002;
/// σ_max of the MNIST model. EDM uses 80 for images in [−1, 1]; the rule behind such choices
/// (Song & Ermon 2020, technique 1) is σ_max ≳ the largest distance between two training images,
/// 14.8 for MNIST in [0, 1]. 40 leaves a margin of 2.7 and costs the ρ = 7 schedule one or two
/// steps at most.
pub const EDM_MNIST_SIGMA_MAX: f64 = 40.0;

/// The parameterisation, tagged by `type` in JSON (`{"type": "edm", "sigma_data": 0.31}`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Parameterisation {
    /// The network is conditioned on t and predicts the scaled score: s(x, t) = net(x, t)/σ(t)
    /// (Song et al. 2021; the score_sde MNIST tutorial). Model cards of version 1.
    Noise,
    /// EDM preconditioning with the data's standard deviation σ_d, measured on the training set.
    Edm { sigma_data: f64 },
    /// A consistency model (Song et al. 2023, appendix C): the network computes f(x̂, σ̂), the
    /// origin at σ_min of the probability-flow trajectory through x̂, with EDM's c_in and c_noise
    /// and the boundary condition built into c_skip and c_out ([`consistency_coefficients`]).
    Consistency { sigma_data: f64, sigma_min: f64 },
}

/// The four EDM coefficients at one σ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefficients {
    pub c_skip: f64,
    pub c_out: f64,
    pub c_in: f64,
    pub c_noise: f64,
}

/// EDM's coefficients for σ and σ_d (Karras et al. 2022, table 1, "Ours").
pub fn edm_coefficients(sigma: f64, sigma_data: f64) -> Coefficients {
    let (s2, d2) = (sigma * sigma, sigma_data * sigma_data);
    Coefficients { c_skip: d2 / (s2 + d2), c_out: sigma * sigma_data / (s2 + d2).sqrt(), c_in: 1.0 / (s2 + d2).sqrt(), c_noise: 0.25 * sigma.ln() }
}

/// A consistency model's coefficients (Song et al. 2023, appendix C): c_skip = σ_d²/((σ − σ_min)² +
/// σ_d²) and c_out = σ_d (σ − σ_min)/√(σ² + σ_d²), so that f(x, σ_min) = x whatever the network
/// computes (the boundary condition), and EDM's c_in and c_noise, so that a student initialised
/// from an EDM teacher sees the inputs the teacher saw. As σ_min → 0 they become EDM's.
pub fn consistency_coefficients(sigma: f64, sigma_data: f64, sigma_min: f64) -> Coefficients {
    let d2 = sigma_data * sigma_data;
    let shifted = sigma - sigma_min;
    let edm = edm_coefficients(sigma, sigma_data);
    Coefficients { c_skip: d2 / (shifted * shifted + d2), c_out: sigma_data * shifted / (sigma * sigma + d2).sqrt(), ..edm }
}

impl Parameterisation {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let sigma_data = match *self {
            Parameterisation::Noise => return Ok(()),
            Parameterisation::Edm { sigma_data } => sigma_data,
            Parameterisation::Consistency { sigma_data, sigma_min } => {
                if !(sigma_min.is_finite() && sigma_min > 0.0 && sigma_min < 1e6) {
                    return Err(ConfigError::invalid("parameterisation.sigma_min", format!("must be a positive number, got {sigma_min}")));
                }
                sigma_data
            }
        };
        if !(sigma_data.is_finite() && sigma_data > 0.0 && sigma_data < 1e6) {
            return Err(ConfigError::invalid("parameterisation.sigma_data", format!("must be a positive number, got {sigma_data}")));
        }
        Ok(())
    }

    /// Whether the network is a consistency function rather than a score (or denoiser): such a
    /// model samples with [`crate::sampling::Sampler::Consistency`] only.
    pub fn is_consistency(&self) -> bool {
        matches!(self, Parameterisation::Consistency { .. })
    }

    /// c_skip, c_out, c_in and c_noise at σ̂ for the parameterisations built on EDM's (`None` for
    /// `noise`).
    pub fn coefficients(&self, sigma_hat: f64) -> Option<Coefficients> {
        match *self {
            Parameterisation::Noise => None,
            Parameterisation::Edm { sigma_data } => Some(edm_coefficients(sigma_hat, sigma_data)),
            Parameterisation::Consistency { sigma_data, sigma_min } => Some(consistency_coefficients(sigma_hat, sigma_data, sigma_min)),
        }
    }

    /// Short name, as in model cards.
    pub fn name(&self) -> &'static str {
        match self {
            Parameterisation::Noise => "noise",
            Parameterisation::Edm { .. } => "edm",
            Parameterisation::Consistency { .. } => "consistency",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The coefficients make F's training target unit-variance (Karras et al. 2022, appendix
    /// B.6): for y with variance σ_d² and x = y + σn, Var[(y − c_skip·x)/c_out] = 1 and
    /// Var[c_in·x] = 1, at every σ.
    #[test]
    fn edm_coefficients_give_unit_variance_input_and_target() {
        let d = 0.31;
        for sigma in [0.002, 0.05, 0.31, 2.0, 80.0] {
            let c = edm_coefficients(sigma, d);
            // (y − c_skip (y + σ n))/c_out = ((1 − c_skip) y − c_skip σ n)/c_out.
            let target_var = ((1.0 - c.c_skip).powi(2) * d * d + (c.c_skip * sigma).powi(2)) / c.c_out.powi(2);
            let input_var = c.c_in.powi(2) * (d * d + sigma * sigma);
            assert!((target_var - 1.0).abs() < 1e-12, "σ = {sigma}: target variance {target_var}");
            assert!((input_var - 1.0).abs() < 1e-12, "σ = {sigma}: input variance {input_var}");
            assert!((c.c_noise - sigma.ln() / 4.0).abs() < 1e-15);
        }
        // σ → 0: the denoiser returns its input; σ → ∞: c_skip → 0.
        assert!((edm_coefficients(1e-9, d).c_skip - 1.0).abs() < 1e-12);
        assert!(edm_coefficients(1e6, d).c_skip < 1e-12);
    }

    /// The boundary condition: at σ = σ_min, c_skip = 1 and c_out = 0, so f(x, σ_min) = x for any
    /// network; above it the coefficients approach EDM's as σ_min → 0, and c_in, c_noise are EDM's.
    #[test]
    fn consistency_coefficients_meet_the_boundary_condition() {
        let (d, min) = (0.31, 0.002);
        let at_min = consistency_coefficients(min, d, min);
        assert_eq!((at_min.c_skip, at_min.c_out), (1.0, 0.0));
        for sigma in [0.01, 0.5, 40.0] {
            let c = consistency_coefficients(sigma, d, min);
            let e = edm_coefficients(sigma, d);
            assert_eq!((c.c_in, c.c_noise), (e.c_in, e.c_noise));
            let near = consistency_coefficients(sigma, d, 1e-12);
            assert!((near.c_skip - e.c_skip).abs() < 1e-9 && (near.c_out - e.c_out).abs() < 1e-9, "σ = {sigma}");
        }
        let p = Parameterisation::Consistency { sigma_data: d, sigma_min: min };
        assert!(p.is_consistency() && !Parameterisation::Edm { sigma_data: d }.is_consistency());
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"type":"consistency","sigma_data":0.31,"sigma_min":0.002}"#);
        assert!(Parameterisation::Consistency { sigma_data: d, sigma_min: 0.0 }.validate().is_err());
    }

    #[test]
    fn json_names_and_validation() {
        let p = Parameterisation::Edm { sigma_data: 0.5 };
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"type":"edm","sigma_data":0.5}"#);
        assert_eq!(serde_json::from_str::<Parameterisation>(r#"{"type":"noise"}"#).unwrap(), Parameterisation::Noise);
        assert!(Parameterisation::Edm { sigma_data: f64::NAN }.validate().is_err());
        assert!(Parameterisation::Edm { sigma_data: 0.0 }.validate().is_err());
    }
}
