//! Isotropic Gaussian mixtures, whose perturbed densities and scores are known in closed form: the
//! 2-D explainer's distributions ([`crate::field`]) and the samplers' test targets.
//!
//! Data x(0) ~ Σ_k w_k N(μ_k, s_k² I) under a linear SDE with marginal x(t) = m(t) x(0) + σ(t) z
//! stays a mixture, p_t = Σ_k w_k N(m μ_k, v_k I) with v_k = m² s_k² + σ², and its score is
//! ∇ₓ log p_t(x) = Σ_k r_k(x) (m μ_k − x) / v_k, where r_k(x) ∝ w_k N(x; m μ_k, v_k I) are the
//! components' responsibilities (Song & Ermon 2019, §3.2, draw the same field). A point set
//! smoothed by N(0, s² I) — two moons, a spiral, a reader's drawing — is a mixture of equal weights.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::error::ConfigError;
use crate::sampling::ScoreFn;
use crate::sde::Sde;

/// Σ_k w_k N(μ_k, s_k² I) in D dimensions.
#[derive(Clone, Debug, PartialEq)]
pub struct Mixture {
    /// w_k > 0, summing to 1.
    pub weights: Vec<f64>,
    /// μ_k, each of D values.
    pub means: Vec<Vec<f64>>,
    /// s_k > 0.
    pub stds: Vec<f64>,
}

/// At most this many components (a drawing of this many points): the score's cost grows with it.
pub const MAX_COMPONENTS: usize = 4096;

impl Mixture {
    /// A mixture, checked: 1..=[`MAX_COMPONENTS`] components of one dimension, finite means,
    /// positive weights (normalised here) and standard deviations.
    pub fn new(weights: Vec<f64>, means: Vec<Vec<f64>>, stds: Vec<f64>) -> Result<Self, ConfigError> {
        let k = means.len();
        if !(1..=MAX_COMPONENTS).contains(&k) {
            return Err(ConfigError::invalid("components", format!("must number 1..={MAX_COMPONENTS}, got {k}")));
        }
        if weights.len() != k || stds.len() != k {
            return Err(ConfigError::invalid("components", format!("{k} means but {} weights and {} standard deviations", weights.len(), stds.len())));
        }
        let d = means[0].len();
        if d == 0 || means.iter().any(|m| m.len() != d) {
            return Err(ConfigError::invalid("means", "must all have the same, non-zero, number of coordinates"));
        }
        if let Some(m) = means.iter().flatten().find(|v| !v.is_finite()) {
            return Err(ConfigError::invalid("means", format!("must be finite, got {m}")));
        }
        if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
            return Err(ConfigError::invalid("weights", format!("must be positive and finite, got {w}")));
        }
        if let Some(s) = stds.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(ConfigError::invalid("stds", format!("must be positive and finite, got {s}")));
        }
        let total: f64 = weights.iter().sum();
        Ok(Self { weights: weights.into_iter().map(|w| w / total).collect(), means, stds })
    }

    /// The points, each smoothed by N(0, std² I), with equal weights.
    pub fn from_points(points: Vec<Vec<f64>>, std: f64) -> Result<Self, ConfigError> {
        let n = points.len();
        Self::new(vec![1.0; n], points, vec![std; n])
    }

    pub fn dim(&self) -> usize {
        self.means[0].len()
    }

    pub fn components(&self) -> usize {
        self.means.len()
    }

    /// E[x] = Σ_k w_k μ_k.
    pub fn mean(&self) -> Vec<f64> {
        (0..self.dim()).map(|i| self.weights.iter().zip(&self.means).map(|(w, m)| w * m[i]).sum()).collect()
    }

    /// Cov[x] = Σ_k w_k (s_k² I + μ_k μ_kᵀ) − E[x] E[x]ᵀ, row-major D×D.
    pub fn cov(&self) -> Vec<f64> {
        let d = self.dim();
        let mu = self.mean();
        let mut cov = vec![0.0; d * d];
        for ((w, m), s) in self.weights.iter().zip(&self.means).zip(&self.stds) {
            for i in 0..d {
                for j in 0..d {
                    cov[i * d + j] += w * (if i == j { s * s } else { 0.0 } + m[i] * m[j]);
                }
            }
        }
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] -= mu[i] * mu[j];
            }
        }
        cov
    }

    /// The mixture x(t) follows: components N(m μ_k, (m² s_k² + σ²) I) (module docs).
    pub fn perturbed(&self, sde: &Sde, t: f64) -> Mixture {
        let (m, sigma) = sde.marginal(t);
        Mixture {
            weights: self.weights.clone(),
            means: self.means.iter().map(|mu| mu.iter().map(|v| m * v).collect()).collect(),
            stds: self.stds.iter().map(|s| (m * m * s * s + sigma * sigma).sqrt()).collect(),
        }
    }

    /// log w_k + log N(x; μ_k, s_k² I) for every k.
    fn log_joint(&self, x: &[f64]) -> Vec<f64> {
        let d = self.dim() as f64;
        let log_2pi = (2.0 * std::f64::consts::PI).ln();
        self.weights
            .iter()
            .zip(&self.means)
            .zip(&self.stds)
            .map(|((w, mu), s)| {
                let sq: f64 = x.iter().zip(mu).map(|(a, b)| (a - b) * (a - b)).sum();
                w.ln() - 0.5 * d * (log_2pi + 2.0 * s.ln()) - sq / (2.0 * s * s)
            })
            .collect()
    }

    /// log p(x) and the responsibilities r_k(x) = P(component k | x), from one log-sum-exp over
    /// the components.
    fn posterior(&self, x: &[f64]) -> (f64, Vec<f64>) {
        let l = self.log_joint(x);
        let top = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = l.iter().map(|v| (v - top).exp()).collect();
        let total: f64 = e.iter().sum();
        (top + total.ln(), e.into_iter().map(|v| v / total).collect())
    }

    /// log p(x).
    pub fn log_density(&self, x: &[f64]) -> f64 {
        self.posterior(x).0
    }

    /// r_k(x) = P(component k | x).
    pub fn responsibilities(&self, x: &[f64]) -> Vec<f64> {
        self.posterior(x).1
    }

    /// ∇ₓ log p(x) = Σ_k r_k(x) (μ_k − x) / s_k², on the host (the field's arrows).
    pub fn score_at(&self, x: &[f64]) -> Vec<f64> {
        self.log_density_and_score(x).1
    }

    /// log p(x) and ∇ₓ log p(x) together (the field's grid needs both at every cell).
    pub fn log_density_and_score(&self, x: &[f64]) -> (f64, Vec<f64>) {
        let (log_p, r) = self.posterior(x);
        let mut score = vec![0.0; x.len()];
        for ((rk, mu), s) in r.iter().zip(&self.means).zip(&self.stds) {
            for i in 0..x.len() {
                score[i] += rk * (mu[i] - x[i]) / (s * s);
            }
        }
        (log_p, score)
    }

    /// The component each point most probably came from: the argmax of r_k (ties to the first).
    pub fn assign(&self, x: &[f64]) -> usize {
        let l = self.log_joint(x);
        (0..l.len()).fold(0, |best, k| if l[k] > l[best] { k } else { best })
    }

    /// The score of the data diffused by `sde`, for the samplers.
    pub fn score_fn<'a>(&'a self, sde: &'a Sde) -> MixtureScore<'a> {
        MixtureScore { mixture: self, sde }
    }
}

/// ∇ₓ log p_t for a mixture's data diffused by an SDE: a [`ScoreFn`] over batches [B, C, H, W]
/// with C·H·W = D (2-D points are [B, 2, 1, 1]).
pub struct MixtureScore<'a> {
    pub mixture: &'a Mixture,
    pub sde: &'a Sde,
}

impl ScoreFn for MixtureScore<'_> {
    /// With X [B, D], the scaled means M = m μ [K, D] and v [K]: logits_k = log w_k − (D/2) log v_k
    /// − ‖x − m μ_k‖² / (2 v_k), r = softmax(logits), s = (r/v) M − x Σ_k r_k / v_k. A dozen
    /// tensor operations whatever K (a drawing may have thousands of points).
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        let shape = x.dims();
        let b = shape[0];
        let (d, k) = (self.mixture.dim(), self.mixture.components());
        let device = x.device();
        let p = self.mixture.perturbed(self.sde, t);
        let means: Vec<f32> = p.means.iter().flatten().map(|&v| v as f32).collect();
        let means = Tensor::<2>::from_data(TensorData::new(means, [k, d]), &device); // [K, D]
        let inv_var: Vec<f32> = p.stds.iter().map(|s| (1.0 / (s * s)) as f32).collect();
        let inv_var = Tensor::<2>::from_data(TensorData::new(inv_var, [1, k]), &device); // [1, K]
        let log_norm: Vec<f32> = p.weights.iter().zip(&p.stds).map(|(w, s)| (w.ln() - d as f64 * s.ln()) as f32).collect();
        let log_norm = Tensor::<2>::from_data(TensorData::new(log_norm, [1, k]), &device); // [1, K]
        let x = x.reshape([b, d]); // [B, D]
        // ‖x − μ_k‖² = ‖x‖² − 2 x·μ_k + ‖μ_k‖², without a [B, K, D] intermediate.
        let sq = x.clone().powi_scalar(2).sum_dim(1) - x.clone().matmul(means.clone().transpose()) * 2.0 + means.clone().powi_scalar(2).sum_dim(1).transpose(); // [B, K]
        let r = softmax(log_norm - sq * inv_var.clone() * 0.5, 1); // [B, K]
        let r_over_v = r * inv_var; // [B, K]
        let pull = r_over_v.clone().matmul(means); // [B, D]
        (pull - x * r_over_v.sum_dim(1)).reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host score is the gradient of the host log-density (central differences).
    #[test]
    fn score_is_the_gradient_of_the_log_density() {
        let m = Mixture::new(vec![0.2, 0.8], vec![vec![-1.0, 0.5], vec![2.0, -1.0]], vec![0.7, 1.3]).unwrap();
        let x = [0.3, 0.1];
        let h = 1e-5;
        let s = m.score_at(&x);
        for i in 0..2 {
            let (mut a, mut b) = (x, x);
            a[i] += h;
            b[i] -= h;
            let fd = (m.log_density(&a) - m.log_density(&b)) / (2.0 * h);
            assert!((fd - s[i]).abs() < 1e-6, "coordinate {i}: {fd} vs {}", s[i]);
        }
    }

    /// The batched tensor score agrees with the host formula on p_t (VE, t = 0.5).
    #[test]
    fn tensor_score_matches_the_host_score() {
        let device = crate::backend::cpu().device;
        let m = Mixture::new(vec![0.3, 0.5, 0.2], vec![vec![-3.0, 0.0], vec![3.0, 1.0], vec![0.0, 4.0]], vec![0.5, 0.4, 1.0]).unwrap();
        let sde = Sde::ve(10.0);
        let points = [[0.1f32, 0.2], [-2.5, 0.4], [2.0, 3.0], [9.0, -7.0]];
        let x = Tensor::<4>::from_data(TensorData::new(points.iter().flatten().copied().collect::<Vec<_>>(), [4, 2, 1, 1]), &device);
        let s: Vec<f32> = m.score_fn(&sde).score(x, 0.5).into_data().try_to_vec().unwrap();
        let p = m.perturbed(&sde, 0.5);
        for (i, pt) in points.iter().enumerate() {
            let host = p.score_at(&[pt[0] as f64, pt[1] as f64]);
            for j in 0..2 {
                assert!((host[j] - s[2 * i + j] as f64).abs() < 1e-4 * (1.0 + host[j].abs()), "point {i}: {host:?} vs {:?}", &s[2 * i..2 * i + 2]);
            }
        }
    }

    #[test]
    fn bad_mixtures_are_refused_by_name() {
        let err = Mixture::new(vec![1.0], vec![vec![f64::NAN, 0.0]], vec![1.0]).unwrap_err();
        assert!(err.to_string().contains("means"), "{err}");
        let err = Mixture::from_points(vec![], 0.1).unwrap_err();
        assert!(err.to_string().contains("components"), "{err}");
        let err = Mixture::new(vec![-1.0], vec![vec![0.0, 0.0]], vec![1.0]).unwrap_err();
        assert!(err.to_string().contains("weights"), "{err}");
    }
}
