//! A score learned in the reader's browser, to set beside the exact one: a small MLP trained by
//! denoising score matching on a fixed set of samples of the field's distribution. Song & Ermon
//! 2019 (§3.1, figure 2) show why it matters: the learned score is accurate where the samples are
//! and wrong where there are none, which is where Langevin dynamics starts.
//!
//! The network predicts the noise: for x(t) = m(t) x(0) + σ(t) z it learns ε_θ(x, t) ≈ E[z | x(t)]
//! by minimising E‖ε_θ(x(t), t) − z‖², which is denoising score matching (Vincent 2011) with
//! λ(t) = σ(t)² (Song et al. 2021, eq. 7); the score is −ε_θ/σ(t). Its input is scaled to unit
//! variance, x / sqrt(m² σ_data² + σ²), and it sees the noise level as Fourier features of
//! ln σ̂(t) / 4 (Karras et al. 2022's c_in and c_noise).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::{Field, VIEW_HALF_WIDTH};
use crate::error::SampleError;
use crate::sampling::{Noise, ScoreFn};
use crate::sde::{Sde, T_END};

/// Units per hidden layer, hidden layers, and Fourier frequencies of the noise level.
pub const WIDTH: usize = 128;
pub const HIDDEN_LAYERS: usize = 3;
pub const FOURIER: usize = 8;
/// The training set: this many samples of the distribution, drawn once (a dataset, not the
/// density: where it has no points, nothing teaches the network).
pub const TRAINING_POINTS: usize = 256;
/// Adam's step size (Kingma & Ba 2015's other defaults), held for [`DECAY_AFTER`] steps and then
/// decayed as 1/√step (Karras et al. 2024's schedule), which stills the jitter of a constant step.
pub const LEARNING_RATE: f64 = 2e-3;
pub const DECAY_AFTER: usize = 500;
/// The most steps one call trains (the page trains in chunks, so that it can pause).
pub const MAX_STEPS_PER_CALL: usize = 10_000;

/// ε_θ(x, t): the MLP.
#[derive(Module, Debug)]
pub struct ScoreMlp {
    input: Linear,
    hidden: Vec<Linear>,
    output: Linear,
}

impl ScoreMlp {
    pub fn new(device: &Device) -> Self {
        ScoreMlp {
            input: LinearConfig::new(2 + 2 * FOURIER, WIDTH).init(device),
            hidden: (1..HIDDEN_LAYERS).map(|_| LinearConfig::new(WIDTH, WIDTH).init(device)).collect(),
            output: LinearConfig::new(WIDTH, 2).init(device),
        }
    }

    /// x_in [B, 2] (scaled to unit variance), c_noise [B, 1] → ε̂ [B, 2].
    pub fn forward(&self, x_in: Tensor<2>, c_noise: Tensor<2>) -> Tensor<2> {
        let freqs: Vec<f32> = (1..=FOURIER).map(|k| (std::f64::consts::PI * k as f64) as f32).collect();
        let freqs = Tensor::<2>::from_data(TensorData::new(freqs, [1, FOURIER]), &x_in.device());
        let phase = c_noise.matmul(freqs); // [B, F]
        let mut h = silu(self.input.forward(Tensor::cat(vec![x_in, phase.clone().sin(), phase.cos()], 1))); // [B, W]
        for layer in &self.hidden {
            h = silu(layer.forward(h));
        }
        self.output.forward(h)
    }
}

/// c_in x and c_noise for x(t) with marginal coefficients m and σ (each [B, 1]).
fn precondition(x: Tensor<2>, mean: Tensor<2>, std: Tensor<2>, sigma_data: f64) -> (Tensor<2>, Tensor<2>) {
    let c_in = (mean.clone().powi_scalar(2) * (sigma_data * sigma_data) + std.clone().powi_scalar(2)).sqrt().recip();
    (x * c_in, (std / mean).log() * 0.25)
}

/// The training state: the network on an autodiff device, Adam, the training set, the losses.
pub struct Learner {
    net: ScoreMlp,
    optim: ModuleOptimizer,
    data: Tensor<2>,
    sde: Sde,
    sigma_data: f64,
    noise: Noise,
    device: Device,
    pub step: usize,
    /// The loss of every step so far.
    pub losses: Vec<f32>,
}

impl Learner {
    /// A fresh network and a training set of [`TRAINING_POINTS`] samples, both from `seed`.
    pub async fn new(field: &Field, seed: u64, device: &Device) -> Result<Self, SampleError> {
        let mut noise = Noise::new(seed);
        let ad = device.clone().autodiff();
        noise.seed_device(device);
        let net = ScoreMlp::new(&ad);
        let data = field.sample_data(TRAINING_POINTS, &mut noise, device).await?;
        let values = data.into_data_async().await.map_err(|e| SampleError::Readback(format!("{e:?}")))?;
        let data = Tensor::<4>::from_data(values, &ad).reshape([TRAINING_POINTS, 2]);
        let cov = field.mixture.cov();
        Ok(Learner {
            net,
            optim: AdamConfig::new().init(),
            data,
            sde: field.sde,
            sigma_data: (0.5 * (cov[0] + cov[3])).sqrt(),
            noise,
            device: device.clone(),
            step: 0,
            losses: Vec::new(),
        })
    }

    /// The training set, [N, 2] row-major.
    pub async fn points(&self) -> Result<Vec<f32>, SampleError> {
        let data = self.data.clone().into_data_async().await.map_err(|e| SampleError::Readback(format!("{e:?}")))?;
        data.try_to_vec::<f32>().map_err(|e| SampleError::Readback(format!("{e:?}")))
    }

    /// `steps` Adam steps on the whole training set, a fresh t ~ U(ε, 1) and z for every point at
    /// every step; returns their losses. The losses stay on the device until the last step (one
    /// readback per call, which a GPU in a browser can only do asynchronously).
    pub async fn train(&mut self, steps: usize) -> Result<Vec<f32>, SampleError> {
        if !(1..=MAX_STEPS_PER_CALL).contains(&steps) {
            return Err(SampleError::invalid("steps", format!("must be in 1..={MAX_STEPS_PER_CALL}, got {steps}")));
        }
        let ad = self.device.clone().autodiff();
        let n = TRAINING_POINTS;
        let mut losses = Vec::with_capacity(steps);
        for _ in 0..steps {
            let t = self.noise.uniform([n, 1, 1, 1], self.sde.eps(), T_END, &ad).reshape([n, 1]);
            let z = self.noise.normal([n, 2, 1, 1], 1.0, &ad).reshape([n, 2]);
            let (mean, std) = self.sde.marginal_batch(t);
            let x = self.data.clone() * mean.clone() + z.clone() * std.clone();
            let (x_in, c_noise) = precondition(x, mean, std, self.sigma_data);
            let loss = (self.net.forward(x_in, c_noise) - z).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &self.net);
            losses.push(loss.without_autodiff().reshape([1]));
            let lr = LEARNING_RATE / ((self.step as f64 / DECAY_AFTER as f64).max(1.0)).sqrt();
            self.net = self.optim.step(lr, self.net.clone(), grads);
            self.step += 1;
        }
        let values = Tensor::cat(losses, 0).into_data_async().await.map_err(|e| SampleError::Readback(format!("{e:?}")))?;
        let values = values.try_to_vec::<f32>().map_err(|e| SampleError::Readback(format!("{e:?}")))?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(SampleError::Diverged { step: self.step - steps + i + 1 });
        }
        self.losses.extend_from_slice(&values);
        Ok(values)
    }

    /// The learned score −ε_θ/σ(t), for the samplers and the grid.
    pub fn score(&self) -> LearnedScore {
        LearnedScore { net: self.net.valid(), sde: self.sde, sigma_data: self.sigma_data }
    }
}

/// s_θ(x, t) = −ε_θ(c_in x, c_noise)/σ(t): a [`ScoreFn`] over [B, 2, 1, 1] batches.
pub struct LearnedScore {
    net: ScoreMlp,
    sde: Sde,
    sigma_data: f64,
}

impl ScoreFn for LearnedScore {
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        let shape = x.dims();
        let b = shape[0];
        let device = x.device();
        let (m, s) = self.sde.marginal(t);
        let mean = Tensor::<2>::full([b, 1], m, &device);
        let std = Tensor::<2>::full([b, 1], s, &device);
        let (x_in, c_noise) = precondition(x.reshape([b, 2]), mean, std, self.sigma_data);
        (self.net.forward(x_in, c_noise) * (-1.0 / s)).reshape(shape)
    }
}

/// The learned score on the view's grid and how far it is from the exact one ([`Field::compare`]).
pub struct Comparison {
    pub n: usize,
    /// s_θ [n², 2], rows from the top.
    pub score: Vec<f32>,
    /// ‖s_θ − s‖ per cell [n²].
    pub error: Vec<f32>,
    /// mean ‖s_θ − s‖ / mean ‖s‖ over the cells where p_t ≥ 10 % of its peak.
    pub dense_error: f64,
    /// The same over the cells where p_t ≤ 0.1 % of its peak.
    pub sparse_error: f64,
    /// mean ‖s_θ − s‖ over those cells, in the score's units.
    pub dense_abs_error: f64,
    pub sparse_abs_error: f64,
}

impl Field {
    /// The learned score against the exact one at time t on an n × n grid.
    pub async fn compare(&self, learned: &LearnedScore, t: f64, n: usize, device: &Device) -> Result<Comparison, SampleError> {
        let grid = self.grid(t, n).map_err(|e| SampleError::invalid("grid", e.to_string()))?;
        let coord = |i: usize| (-VIEW_HALF_WIDTH + 2.0 * VIEW_HALF_WIDTH * (i as f64 + 0.5) / n as f64) as f32;
        let points: Vec<f32> = (0..n).flat_map(|row| (0..n).flat_map(move |col| [coord(col), -coord(row)])).collect();
        let x = Tensor::<4>::from_data(TensorData::new(points, [n * n, 2, 1, 1]), device);
        let score = learned.score(x, t).into_data_async().await.map_err(|e| SampleError::Readback(format!("{e:?}")))?;
        let score = score.try_to_vec::<f32>().map_err(|e| SampleError::Readback(format!("{e:?}")))?;
        let error: Vec<f32> = (0..n * n).map(|i| (score[2 * i] - grid.score[2 * i]).hypot(score[2 * i + 1] - grid.score[2 * i + 1])).collect();
        let peak = grid.density.iter().copied().fold(0.0f32, f32::max);
        // (mean ‖Δ‖ / mean ‖s‖, mean ‖Δ‖) over the cells whose density `keep` accepts.
        let errors = |keep: &dyn Fn(f32) -> bool| {
            let (mut err, mut norm, mut cells) = (0.0f64, 0.0f64, 0usize);
            for i in (0..n * n).filter(|&i| keep(grid.density[i])) {
                err += error[i] as f64;
                norm += (grid.score[2 * i] as f64).hypot(grid.score[2 * i + 1] as f64);
                cells += 1;
            }
            (err / norm.max(1e-12), err / cells.max(1) as f64)
        };
        let (dense_error, dense_abs_error) = errors(&|p| p >= 0.1 * peak);
        let (sparse_error, sparse_abs_error) = errors(&|p| p <= 1e-3 * peak);
        Ok(Comparison { n, score, error, dense_error, sparse_error, dense_abs_error, sparse_abs_error })
    }
}
