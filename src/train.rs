//! Training by denoising score matching (Vincent 2011; Song et al. 2021, eq. 7):
//!
//! θ* = argmin E_t E_x(0) E_x(t)|x(0) [ λ(t) ‖s_θ(x(t), t) − ∇ log p_0t(x(t) | x(0))‖² ],
//!
//! with t ~ U(ε, 1), x(t) = m(t) x(0) + σ(t) z, ∇ log p_0t = −z/σ(t) and λ(t) = σ(t)², so that
//! with s_θ = net/σ the loss is ‖net(x(t), t) + z‖² (score_sde `losses.get_sde_loss_fn` with
//! `likelihood_weighting=False`). Adam with linear warm-up and gradient-norm clipping, and an
//! exponential moving average of the weights, which is what gets shipped (score_sde defaults:
//! lr 2e-4, warm-up 5000, clip 1, EMA 0.999 for NCSN++).
//!
//! Everything random is drawn from seeded generators whose state is saved with each checkpoint,
//! so a run resumed from a checkpoint continues exactly as it would have.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::data::{Digits, SplitMix};
use crate::model::{ScoreModel, ScoreNet, ScoreNetConfig};
use crate::sampling::Noise;
use crate::sde::Sde;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub steps: u64,
    pub batch_size: usize,
    /// Peak learning rate (score_sde: 2e-4).
    pub learning_rate: f64,
    /// Linear warm-up steps (score_sde: 5000 for runs of 1.3M steps; shorter runs, shorter warm-up).
    pub warmup: u64,
    /// Gradient-norm clip (score_sde: 1).
    pub grad_clip: f32,
    /// EMA decay of the shipped weights (score_sde: 0.999 for NCSN++).
    pub ema: f64,
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self { steps: 20_000, batch_size: 32, learning_rate: 2e-4, warmup: 1000, grad_clip: 1.0, ema: 0.999, seed: 0, checkpoint_every: 1000 }
    }
}

#[derive(Debug, Error)]
pub enum TrainError {
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: String, reason: String },
    #[error("{0}")]
    Weights(#[from] crate::error::WeightsError),
    #[error("{0}")]
    Config(#[from] crate::error::ConfigError),
    #[error("loss became non-finite at step {0}; lower the learning rate")]
    NonFinite(u64),
}

fn ckpt_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint { path: path.display().to_string(), reason: e.to_string() }
}

/// The training state: the network (on an autodiff device), its EMA, the optimizer and the
/// generators.
pub struct Trainer {
    pub config: TrainConfig,
    pub arch: ScoreNetConfig,
    pub sde: Sde,
    pub net: ScoreNet,
    pub ema: ScoreNet,
    optim: ModuleOptimizer,
    pub step: u64,
    noise: Noise,
    batches: SplitMix,
    device: Device,
    /// Loss of the most recent step.
    pub last_loss: f64,
    /// Training wall time of earlier sessions of this run (restored from the checkpoint).
    pub wall_time_before: f64,
    session_start: Instant,
}

/// Saved beside the tensors of a checkpoint.
#[derive(Serialize, Deserialize)]
struct CheckpointState {
    config: TrainConfig,
    arch: ScoreNetConfig,
    sde: Sde,
    step: u64,
    noise_draws: u64,
    batches: SplitMix,
    /// None before the first step (JSON has no NaN).
    last_loss: Option<f64>,
    wall_time_s: f64,
}

impl Trainer {
    pub fn new(arch: ScoreNetConfig, sde: Sde, config: TrainConfig, device: &Device) -> Result<Self, TrainError> {
        sde.validate()?;
        device.seed(config.seed);
        let net = arch.init(&device.clone().autodiff())?;
        let ema = net.clone().valid();
        Ok(Self {
            optim: optimizer(&config),
            noise: Noise::new(config.seed ^ 0x5eed),
            batches: SplitMix::new(config.seed ^ 0xba7c),
            config,
            arch,
            sde,
            net,
            ema,
            step: 0,
            device: device.clone(),
            last_loss: f64::NAN,
            wall_time_before: 0.0,
            session_start: Instant::now(),
        })
    }

    /// Learning rate at the current step: linear warm-up, then constant.
    pub fn learning_rate(&self) -> f64 {
        let warm = if self.config.warmup == 0 { 1.0 } else { ((self.step + 1) as f64 / self.config.warmup as f64).min(1.0) };
        self.config.learning_rate * warm
    }

    /// Draws the next batch of training images ([B, 1, 28, 28] in [0, 1]).
    pub fn next_batch(&mut self, data: &Digits) -> Tensor<4> {
        let b = self.config.batch_size;
        let idx: Vec<usize> = (0..b).map(|_| self.batches.below(data.len())).collect();
        let side = crate::data::SIDE;
        Tensor::from_data(TensorData::new(data.floats(&idx), [b, 1, side, side]), &self.device.clone().autodiff())
    }

    /// The DSM loss ‖net(x(t), t) + z‖², averaged over pixels and batch, for a batch x(0).
    pub fn loss(&mut self, x0: Tensor<4>) -> Tensor<1> {
        let [b, ..] = x0.dims();
        let device = x0.device();
        let eps = self.sde.eps();
        // t ~ U(ε, 1), one per sample, from the seeded host generator.
        let t_host: Vec<f64> = (0..b).map(|_| eps + (1.0 - eps) * self.batches.uniform()).collect();
        let (mean, std): (Vec<f32>, Vec<f32>) = t_host.iter().map(|&t| {
            let (m, s) = self.sde.marginal(t);
            (m as f32, s as f32)
        }).unzip();
        let t = Tensor::<1>::from_data(TensorData::new(t_host.iter().map(|&t| t as f32).collect(), [b]), &device);
        let mean = Tensor::<1>::from_data(TensorData::new(mean, [b]), &device).reshape([b, 1, 1, 1]);
        let std = Tensor::<1>::from_data(TensorData::new(std, [b]), &device).reshape([b, 1, 1, 1]);
        let z = self.noise.normal_like(&x0);
        let xt = x0 * mean + z.clone() * std; // x(t) = m x(0) + σ z
        let out = self.net.forward(xt, t); // σ s_θ
        (out + z).powi_scalar(2).mean()
    }

    /// One optimisation step on the batch; returns its loss.
    pub fn train_step(&mut self, x0: Tensor<4>) -> Result<f64, TrainError> {
        let loss = self.loss(x0);
        let grads = GradientsParams::from_grads(loss.backward(), &self.net);
        let value: f64 = loss.into_scalar::<f32>() as f64;
        if !value.is_finite() {
            return Err(TrainError::NonFinite(self.step));
        }
        let lr = self.learning_rate();
        self.net = self.optim.step(lr, self.net.clone(), grads);
        self.ema = ema_update(self.ema.clone(), &self.net, self.config.ema);
        self.step += 1;
        self.last_loss = value;
        Ok(value)
    }

    /// Seconds spent training this run, over all sessions.
    pub fn wall_time(&self) -> f64 {
        self.wall_time_before + self.session_start.elapsed().as_secs_f64()
    }

    /// The EMA weights as a model for sampling.
    pub fn ema_model(&self) -> ScoreModel {
        ScoreModel { net: self.ema.clone(), sde: self.sde }
    }

    /// Writes `dir/{net.bpk, ema.bpk, optim.bpk, state.json}` (through a temporary folder, so a
    /// crash mid-write leaves the previous checkpoint intact).
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), TrainError> {
        let tmp = dir.with_extension("tmp");
        std::fs::remove_dir_all(&tmp).ok();
        std::fs::create_dir_all(&tmp).map_err(|e| ckpt_err(&tmp, e))?;
        self.net.clone().save_file(tmp.join("net.bpk")).map_err(|e| ckpt_err(&tmp, e))?;
        self.ema.clone().save_file(tmp.join("ema.bpk")).map_err(|e| ckpt_err(&tmp, e))?;
        self.optim.save(tmp.join("optim.bpk")).map_err(|e| ckpt_err(&tmp, e))?;
        let state = CheckpointState {
            config: self.config.clone(),
            arch: self.arch.clone(),
            sde: self.sde,
            step: self.step,
            noise_draws: self.noise.draws(),
            batches: self.batches,
            last_loss: self.last_loss.is_finite().then_some(self.last_loss),
            wall_time_s: self.wall_time(),
        };
        std::fs::write(tmp.join("state.json"), serde_json::to_string_pretty(&state).expect("serialises")).map_err(|e| ckpt_err(&tmp, e))?;
        std::fs::remove_dir_all(dir).ok();
        std::fs::rename(&tmp, dir).map_err(|e| ckpt_err(dir, e))
    }

    /// Restores a trainer from a checkpoint folder. `steps` may extend the run.
    pub fn load_checkpoint(dir: &Path, device: &Device, steps: Option<u64>) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(dir.join("state.json")).map_err(|e| ckpt_err(dir, e))?;
        let state: CheckpointState = serde_json::from_str(&text).map_err(|e| ckpt_err(dir, e))?;
        let mut trainer = Trainer::new(state.arch.clone(), state.sde, state.config.clone(), device)?;
        trainer.net = trainer.net.try_load_file(dir.join("net.bpk")).map_err(|e| ckpt_err(dir, e))?.with_frozen_features();
        trainer.ema = trainer.ema.try_load_file(dir.join("ema.bpk")).map_err(|e| ckpt_err(dir, e))?;
        trainer.optim = optimizer(&state.config).load(dir.join("optim.bpk")).map_err(|e| ckpt_err(dir, e))?;
        trainer.step = state.step;
        trainer.noise = Noise::resume(state.config.seed ^ 0x5eed, state.noise_draws);
        trainer.batches = state.batches;
        trainer.last_loss = state.last_loss.unwrap_or(f64::NAN);
        trainer.wall_time_before = state.wall_time_s;
        if let Some(steps) = steps {
            trainer.config.steps = steps;
        }
        Ok(trainer)
    }

    /// Trains until step `until` (at most `config.steps`), printing progress and writing a
    /// checkpoint every `checkpoint_every` steps (and at the end).
    pub fn run(&mut self, data: &Digits, checkpoint: &Path, until: u64) -> Result<(), TrainError> {
        let until = until.min(self.config.steps);
        let start = Instant::now();
        let first = self.step;
        let mut smoothed = f64::NAN;
        while self.step < until {
            let batch = self.next_batch(data);
            let loss = self.train_step(batch)?;
            smoothed = if smoothed.is_nan() { loss } else { 0.98 * smoothed + 0.02 * loss };
            let done = self.step - first;
            if self.step % 50 == 0 || self.step == self.config.steps {
                let rate = done as f64 / start.elapsed().as_secs_f64();
                let eta = (self.config.steps - self.step) as f64 / rate;
                let width = 30;
                let filled = (width as f64 * self.step as f64 / self.config.steps as f64) as usize;
                eprintln!(
                    "[{}{}] step {}/{}  loss {smoothed:.4}  {rate:.2} steps/s  lr {:.2e}  ETA {}",
                    "#".repeat(filled),
                    ".".repeat(width - filled),
                    self.step,
                    self.config.steps,
                    self.learning_rate(),
                    format_secs(eta)
                );
            }
            if self.step % self.config.checkpoint_every == 0 || self.step == until {
                self.save_checkpoint(checkpoint)?;
            }
        }
        Ok(())
    }
}

fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    AdamConfig::new().with_grad_clipping(Some(GradientClippingConfig::Norm(config.grad_clip))).init()
}

fn format_secs(s: f64) -> String {
    if !s.is_finite() {
        return "?".into();
    }
    let s = s as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Collects every float parameter, flattened, in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().without_autodiff();
        let n = t.shape().num_elements();
        self.0.push(t.reshape([n]));
    }
}

/// ema ← decay · ema + (1 − decay) · θ, parameter by parameter in visiting order.
struct EmaMapper {
    params: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for EmaMapper {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let theta = self.params.next().expect("same architecture");
        let decay = self.decay;
        param.map(|ema| {
            let shape = ema.shape();
            ema * decay + theta.reshape(shape) * (1.0 - decay)
        })
    }
}

fn ema_update(ema: ScoreNet, net: &ScoreNet, decay: f64) -> ScoreNet {
    let mut collect = Collect(Vec::new());
    net.visit(&mut collect);
    ema.map(&mut EmaMapper { params: collect.0.into_iter(), decay })
}

/// Where `scorefield train` keeps its checkpoint by default.
pub fn default_checkpoint_dir() -> PathBuf {
    crate::data::cache_dir().join("checkpoints").join("mnist")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (ScoreNetConfig, TrainConfig, Digits) {
        let arch = ScoreNetConfig { widths: vec![8, 16], embed_dim: 16, ..Default::default() };
        let config = TrainConfig { batch_size: 8, learning_rate: 1e-3, warmup: 0, ..Default::default() };
        let mut digits = Digits { images: Vec::new(), labels: Vec::new() };
        for i in 0..16u8 {
            digits.images.extend((0..crate::data::PIXELS).map(|p| ((p as u32 * 7 + i as u32 * 31) % 256) as u8));
            digits.labels.push(i % 10);
        }
        (arch, config, digits)
    }

    fn params(net: &ScoreNet) -> Vec<f32> {
        let mut c = Collect(Vec::new());
        net.visit(&mut c);
        c.0.into_iter().flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap()).collect()
    }

    /// A few Adam steps on one fixed batch lower the DSM loss on that batch (same t and z draws).
    #[test]
    fn training_steps_lower_the_loss_on_a_fixed_batch() {
        let (arch, config, digits) = tiny();
        let device = Device::flex();
        let mut trainer = Trainer::new(arch, Sde::ve(25.0), config, &device).unwrap();
        let batch = trainer.next_batch(&digits);
        let eval = |trainer: &mut Trainer| {
            trainer.noise = Noise::new(123);
            trainer.loss(batch.clone()).into_scalar::<f32>()
        };
        let before = eval(&mut trainer);
        for _ in 0..10 {
            trainer.noise = Noise::new(123);
            trainer.train_step(batch.clone()).unwrap();
        }
        let after = eval(&mut trainer);
        assert!(after < 0.9 * before, "loss {before} → {after}");
    }

    /// From the same starting checkpoint: train 4 steps; or train 2, checkpoint, resume in a new
    /// trainer, train 2 more: the weights, EMA and losses are bit-identical.
    #[test]
    fn resume_from_checkpoint_is_bit_identical() {
        let (arch, config, digits) = tiny();
        let device = Device::flex();
        let dir = std::env::temp_dir().join(format!("scorefield-ckpt-{}", std::process::id()));
        let start = dir.with_extension("start");
        Trainer::new(arch, Sde::ve(25.0), config, &device).unwrap().save_checkpoint(&start).unwrap();
        let mut straight = Trainer::load_checkpoint(&start, &device, None).unwrap();
        let mut losses = Vec::new();
        for _ in 0..4 {
            let b = straight.next_batch(&digits);
            losses.push(straight.train_step(b).unwrap());
        }
        let mut first = Trainer::load_checkpoint(&start, &device, None).unwrap();
        let mut resumed_losses = Vec::new();
        for _ in 0..2 {
            let b = first.next_batch(&digits);
            resumed_losses.push(first.train_step(b).unwrap());
        }
        first.save_checkpoint(&dir).unwrap();
        drop(first);
        let mut resumed = Trainer::load_checkpoint(&dir, &device, None).unwrap();
        assert_eq!(resumed.step, 2);
        for _ in 0..2 {
            let b = resumed.next_batch(&digits);
            resumed_losses.push(resumed.train_step(b).unwrap());
        }
        assert_eq!(losses, resumed_losses);
        assert_eq!(params(&straight.net), params(&resumed.net));
        assert_eq!(params(&straight.ema), params(&resumed.ema));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::remove_dir_all(&start).ok();
    }
}
