//! Targets whose score is known in closed form, and statistics on host data.
//!
//! For data x(0) ~ N(μ, Σ) and a linear SDE with marginal x(t) = m(t) x(0) + σ(t) z, the
//! perturbed density is p_t = N(m μ, m² Σ + σ² I), so ∇ log p_t(x) = −(m² Σ + σ² I)⁻¹ (x − m μ).
//! Mixtures are the library's own ([`scorefield::mixture`]).
#![allow(dead_code)]

use burn::prelude::*;
use nalgebra::DMatrix;
use scorefield::{ScoreFn, Sde};

/// Gaussian data N(mean, cov) laid out as [B, C, H, W] with C·H·W = D.
pub struct Gaussian {
    pub sde: Sde,
    pub mean: Vec<f64>,
    /// D×D, row-major.
    pub cov: Vec<f64>,
}

impl Gaussian {
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// (m² Σ + σ² I)⁻¹ and m μ at time t.
    pub fn perturbed(&self, t: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let d = self.dim();
        let (m, s) = self.sde.marginal(t);
        let mut cov_t: Vec<f64> = self.cov.iter().map(|c| m * m * c).collect();
        for i in 0..d {
            cov_t[i * d + i] += s * s;
        }
        let mean_t = self.mean.iter().map(|v| m * v).collect();
        (invert(&cov_t, d), mean_t, cov_t)
    }

    /// The lower-triangular L with L Lᵀ = Σ (row-major), to draw exact samples μ + L z.
    pub fn cholesky(&self) -> Vec<f64> {
        cholesky(&self.cov, self.dim())
    }

    /// Exact log-density of x under p_t.
    pub fn log_density(&self, x: &[f64], t: f64) -> f64 {
        let d = self.dim();
        let (prec, mean_t, cov_t) = self.perturbed(t);
        let diff: Vec<f64> = x.iter().zip(&mean_t).map(|(a, b)| a - b).collect();
        let mut quad = 0.0;
        for i in 0..d {
            for j in 0..d {
                quad += diff[i] * prec[i * d + j] * diff[j];
            }
        }
        -0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + log_det(&cov_t, d) + quad)
    }
}

impl ScoreFn for Gaussian {
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        let shape = x.dims();
        let d = self.dim();
        let device = x.device();
        let (prec, mean_t, _) = self.perturbed(t);
        let prec = Tensor::<2>::from_data(TensorData::new(prec.iter().map(|&v| v as f32).collect(), [d, d]), &device);
        let mean_t = Tensor::<2>::from_data(TensorData::new(mean_t.iter().map(|&v| v as f32).collect(), [1, d]), &device);
        let x = x.reshape([shape[0], d]);
        (mean_t - x).matmul(prec).reshape(shape)
    }
}

/// The inverse of a small SPD matrix (row-major), through its Cholesky factor (nalgebra).
pub fn invert(a: &[f64], d: usize) -> Vec<f64> {
    let inverse = DMatrix::from_row_slice(d, d, a).cholesky().expect("an SPD matrix").inverse();
    inverse.transpose().as_slice().to_vec()
}

/// Cholesky factor L (row-major, lower) of an SPD matrix: L Lᵀ = a.
pub fn cholesky(a: &[f64], d: usize) -> Vec<f64> {
    let l = DMatrix::from_row_slice(d, d, a).cholesky().expect("an SPD matrix").l();
    l.transpose().as_slice().to_vec()
}

/// log det of an SPD matrix: twice the sum of the logs of its Cholesky diagonal.
pub fn log_det(a: &[f64], d: usize) -> f64 {
    let l = cholesky(a, d);
    (0..d).map(|i| 2.0 * l[i * d + i].ln()).sum()
}

/// Reads a [B, ...] tensor into rows of D values.
pub fn rows(x: Tensor<4>) -> (Vec<f64>, usize) {
    let [b, c, h, w] = x.dims();
    let data: Vec<f32> = x.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(data.len(), b * c * h * w);
    (data.into_iter().map(f64::from).collect(), c * h * w)
}

/// Sample mean and covariance of rows of D values.
pub fn mean_cov(data: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = data.len() / d;
    let mut mean = vec![0.0; d];
    for row in data.chunks(d) {
        for i in 0..d {
            mean[i] += row[i] / n as f64;
        }
    }
    let mut cov = vec![0.0; d * d];
    for row in data.chunks(d) {
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] += (row[i] - mean[i]) * (row[j] - mean[j]) / (n - 1) as f64;
            }
        }
    }
    (mean, cov)
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// A tiny EDM U-Net (1×8×8, widths 8/16, VE σ 0.002..10) and its weights with every float tensor
/// refilled with small deterministic non-zero values: an untrained U-Net's zero-initialised
/// output layers would make every comparison of its outputs trivially pass.
#[allow(dead_code)]
pub fn tiny_unet(device: &Device) -> (scorefield::ModelCard, Vec<u8>) {
    use scorefield::{Architecture, Parameterisation, UNetConfig, store};
    let arch = UNetConfig { height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, ..Default::default() };
    let sde = scorefield::Sde::Ve { sigma_min: 0.002, sigma_max: 10.0 };
    let card = scorefield::ModelCard::new("tiny", Architecture::Unet(arch), Parameterisation::Edm { sigma_data: 0.3 }, sde);
    let mut bytes = store::save(&store::init(&card, device).unwrap()).unwrap();
    let (entries, _) = store::safetensors::parse_safetensors(&bytes).unwrap();
    for (k, e) in entries.iter().enumerate() {
        assert_eq!(e.dtype, "F32");
        for (i, chunk) in bytes[e.start..e.end].chunks_exact_mut(4).enumerate() {
            let v = 0.15 * ((i * 7 + k * 13) as f32 * 0.37).sin();
            chunk.copy_from_slice(&v.to_le_bytes());
        }
    }
    (card, bytes)
}
