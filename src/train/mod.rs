//! Training the EDM denoiser (Karras et al. 2022, "Elucidating the Design Space of
//! Diffusion-Based Generative Models", §5 and table 1):
//!
//! E_{σ, y, n} [ λ(σ) ‖D_θ(y + n; σ) − y‖² ],  ln σ ~ N(P_mean, P_std²),  n ~ N(0, σ² I),
//!
//! with λ(σ) = 1/c_out(σ)², which makes the loss ‖F_θ(c_in·x, c_noise) − (y − c_skip·x)/c_out‖²,
//! a unit-variance regression target at every σ. Denoising score matching (Vincent 2011) in
//! EDM's parameterisation: s = (D − x)/σ² is the score of the VE SDE's marginal at σ.
//!
//! Adam with linear learning-rate warm-up, an optional cool-down and gradient-norm clipping; an
//! exponential moving average of the weights with EDM's half-life schedule (half-life in images,
//! ramped up to a fixed share of the images seen so far), which is what gets shipped.
//!
//! Everything random is drawn from seeded generators whose state is saved with each checkpoint
//! (σ and the batch indices on the host, the noise and dropout masks on the device, reseeded per
//! draw), so a run resumed from a checkpoint continues exactly as it would have: same batches,
//! same noise, same weights, bit for bit.

mod checkpoint;
pub mod distill;
pub mod classifier;

use std::path::Path;
use std::time::Instant;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::data::{DataSpec, Images};
use crate::rng::SplitMix;
use crate::model::{Architecture, Network, ScoreModel};
use crate::precond::{EDM_P_MEAN, EDM_P_STD, Parameterisation, edm_coefficients};
use crate::sampling::Noise;
use crate::sde::Sde;
use crate::nn::unet::{UNet, UNetConfig};
use crate::store::ModelCard;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub steps: u64,
    pub batch_size: usize,
    /// Peak learning rate (EDM: 1e-3 at batch 512 for CIFAR-10; a small batch wants less).
    pub learning_rate: f64,
    /// Linear warm-up steps.
    pub warmup: u64,
    /// Gradient-norm clip (score_sde: 1).
    pub grad_clip: f32,
    /// EMA half-life in images (EDM: 500,000, `ema_halflife_kimg`).
    pub ema_halflife_images: f64,
    /// The half-life is at most this share of the images seen so far (EDM: 0.05,
    /// `ema_rampup_ratio`), so early weights are forgotten quickly.
    pub ema_rampup: f64,
    /// ln σ ~ N(p_mean, p_std²) (EDM: −1.2, 1.2).
    pub p_mean: f64,
    pub p_std: f64,
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Images between EMA snapshots (f16 model files for the learning curve); 0: none.
    pub snapshot_every_images: u64,
    /// Learning-rate cool-down, warm-up–stable–decay style (Hägele et al. 2024, "Scaling Laws
    /// and Compute-Optimal Training Beyond Fixed Training Durations", §3: a constant rate, then
    /// a cool-down of 10–20 % of the run; their best shape is 1 − √progress): from this many
    /// images seen the rate falls as 1 − √((images − start)/`cooldown_images`) to 0.
    pub cooldown_start_images: u64,
    /// Length of the cool-down in images; 0: none (the rate stays constant after warm-up).
    pub cooldown_images: u64,
    /// Mirror each training image left–right with probability ½ (the data's symmetry, if it has
    /// it: on for emoji, off for digits).
    pub flip: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1_000_000,
            batch_size: 32,
            learning_rate: 5e-4,
            warmup: 1000,
            grad_clip: 1.0,
            ema_halflife_images: 500_000.0,
            ema_rampup: 0.05,
            p_mean: EDM_P_MEAN,
            p_std: EDM_P_STD,
            seed: 0,
            checkpoint_every: 500,
            snapshot_every_images: 160_000,
            cooldown_start_images: 0,
            cooldown_images: 0,
            flip: false,
        }
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

/// The standard deviation of the training pixels: EDM's σ_data, measured (Karras et al. 2022,
/// appendix B.6: σ_data is the data's standard deviation; 0.5 for CIFAR-10 in [−1, 1]).
pub fn sigma_data(data: &Images) -> f64 {
    let n = data.pixels.len() as f64;
    let mean = data.pixels.iter().map(|&p| p as f64 / 255.0).sum::<f64>() / n;
    let var = data.pixels.iter().map(|&p| (p as f64 / 255.0 - mean).powi(2)).sum::<f64>() / n;
    var.sqrt()
}

/// The training state: the network (on an autodiff device), its EMA, the optimizer and the
/// generators.
pub struct Trainer {
    pub config: TrainConfig,
    pub arch: UNetConfig,
    /// The SDE the shipped model samples with (VE, σ_min..σ_max).
    pub sde: Sde,
    pub sigma_data: f64,
    pub net: UNet,
    pub ema: UNet,
    optim: ModuleOptimizer,
    pub step: u64,
    noise: Noise,
    /// The host generator: the batch indices and the training noise levels (ln σ ~ N(P_mean,
    /// P_std²)) come from it.
    host_rng: SplitMix,
    device: Device,
    /// Loss of the most recent step.
    pub last_loss: f64,
    /// Learning-curve rows since the last checkpoint (appended to `curve.tsv` on save).
    /// Sessions, wall time, learning-curve rows not yet written.
    pub log: RunLog,
    /// What the run trains on.
    pub data: DataSpec,
}

/// One stretch of training on one machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub hardware: String,
    pub from_step: u64,
    pub to_step: u64,
    pub wall_time_s: f64,
}

/// What every training run records besides its tensors and generators: where each session ran,
/// the wall time, and the learning-curve rows not yet written to `curve.tsv`.
#[derive(Debug)]
pub struct RunLog {
    pub sessions: Vec<Session>,
    /// Wall time of the earlier sessions (restored from the checkpoint).
    pub wall_time_before: f64,
    session_start: Instant,
    pending_curve: Vec<String>,
}

impl Default for RunLog {
    fn default() -> Self {
        Self { sessions: Vec::new(), wall_time_before: 0.0, session_start: Instant::now(), pending_curve: Vec::new() }
    }
}

impl RunLog {
    /// Seconds spent on the run, over all sessions.
    pub fn wall_time(&self) -> f64 {
        self.wall_time_before + self.session_start.elapsed().as_secs_f64()
    }

    /// Opens a session at `step` on `hardware`.
    pub fn begin_session(&mut self, hardware: String, step: u64) {
        self.sessions.push(Session { hardware, from_step: step, to_step: step, wall_time_s: 0.0 });
        self.session_start = Instant::now();
    }

    /// The part of a card's training record the log knows, at `step`: wall time (to 0.1 s), the
    /// latest session's hardware, every session.
    pub fn record(&self, step: u64) -> crate::store::card::TrainingRecord {
        let sessions = self.sessions_to(step);
        crate::store::card::TrainingRecord {
            wall_time_s: Some((self.wall_time() * 10.0).round() / 10.0),
            hardware: sessions.last().map(|s| s.hardware.clone()),
            sessions: sessions.iter().map(|s| serde_json::to_value(s).expect("serialises")).collect(),
            ..Default::default()
        }
    }

    /// The sessions, the current one brought up to `step` and to now.
    pub fn sessions_to(&self, step: u64) -> Vec<Session> {
        let mut sessions = self.sessions.clone();
        if let Some(last) = sessions.last_mut() {
            last.to_step = step;
            last.wall_time_s = self.session_start.elapsed().as_secs_f64();
        }
        sessions
    }
}

/// Header of a checkpoint's `curve.tsv`.
pub const CURVE_HEADER: &str = "step\timages\twall_time_s\tloss\tlearning_rate\tema_halflife_images";

impl Trainer {
    pub fn new(arch: UNetConfig, sde: Sde, sigma_data: f64, config: TrainConfig, device: &Device) -> Result<Self, TrainError> {
        sde.validate()?;
        Parameterisation::Edm { sigma_data }.validate()?;
        device.seed(config.seed);
        let net = arch.init(&device.clone().autodiff())?;
        let ema = net.clone().valid();
        Ok(Self {
            optim: optimizer(&config),
            noise: Noise::new(config.seed ^ 0x5eed),
            host_rng: SplitMix::new(config.seed ^ 0xba7c),
            config,
            arch,
            sde,
            sigma_data,
            net,
            ema,
            step: 0,
            device: device.clone(),
            last_loss: f64::NAN,
            log: RunLog::default(),
            data: DataSpec::Mnist,
        })
    }

    /// Learning rate of the next step: linear warm-up, constant, then the cool-down if one is set.
    pub fn learning_rate(&self) -> f64 {
        let warm = if self.config.warmup == 0 { 1.0 } else { ((self.step + 1) as f64 / self.config.warmup as f64).min(1.0) };
        self.config.learning_rate * warm * cooldown_factor(&self.config, self.images_seen())
    }

    /// The learning-rate schedule in words, for the model card.
    pub fn schedule_text(&self) -> String {
        let c = &self.config;
        let mut text = format!("linear warm-up over {} steps, then {:e}", c.warmup, c.learning_rate);
        if c.cooldown_images > 0 {
            text += &format!(
                "; cool-down 1 − √p from {} images over {} images (Hägele et al. 2024)",
                c.cooldown_start_images, c.cooldown_images
            );
        }
        text
    }

    /// Images seen after `step` steps.
    pub fn images_seen(&self) -> u64 {
        self.step * self.config.batch_size as u64
    }

    /// The EMA half-life (in images) in force after `images` images: EDM's
    /// min(half-life, ramp-up · images).
    pub fn ema_halflife(&self, images: u64) -> f64 {
        let ramp = if self.config.ema_rampup > 0.0 { self.config.ema_rampup * images as f64 } else { f64::INFINITY };
        self.config.ema_halflife_images.min(ramp)
    }

    /// Draws the next batch of training images ([B, C, H, W] in [0, 1]), each mirrored with
    /// probability ½ when the run flips (one more host draw per image then).
    pub fn next_batch(&mut self, data: &Images) -> Tensor<4> {
        let b = self.config.batch_size;
        let idx: Vec<usize> = (0..b).map(|_| self.host_rng.below(data.len())).collect();
        let [c, h, w] = data.shape;
        let mut values = data.floats(&idx);
        if self.config.flip {
            for image in values.chunks_mut(c * h * w) {
                if self.host_rng.below(2) == 1 {
                    image.chunks_mut(w).for_each(|row| row.reverse());
                }
            }
        }
        Tensor::from_data(TensorData::new(values, [b, c, h, w]), &self.device.clone().autodiff())
    }

    /// EDM's loss for a batch y: ‖F(c_in·x, c_noise) − (y − c_skip·x)/c_out‖², x = y + σn, averaged
    /// over pixels and batch.
    pub fn loss(&mut self, y: Tensor<4>) -> Tensor<1> {
        let [b, ..] = y.dims();
        let device = y.device();
        let sigmas: Vec<f64> = (0..b).map(|_| (self.config.p_mean + self.config.p_std * self.host_rng.normal()).exp()).collect();
        let coefs: Vec<_> = sigmas.iter().map(|&s| edm_coefficients(s, self.sigma_data)).collect();
        let column = |f: &dyn Fn(usize) -> f64| Tensor::<1>::from_data(TensorData::new((0..b).map(|i| f(i) as f32).collect(), [b]), &device);
        let sigma = column(&|i| sigmas[i]).reshape([b, 1, 1, 1]);
        let c_skip = column(&|i| coefs[i].c_skip).reshape([b, 1, 1, 1]);
        let c_out = column(&|i| coefs[i].c_out).reshape([b, 1, 1, 1]);
        let c_in = column(&|i| coefs[i].c_in).reshape([b, 1, 1, 1]);
        let c_noise = column(&|i| coefs[i].c_noise);
        let n = self.noise.normal_like(&y);
        let x = y.clone() + n * sigma; // x = y + σ n
        let target = (y - x.clone() * c_skip) / c_out;
        // The dropout masks come from the device generator: seed it from the run's stream.
        self.noise.seed_device(&device);
        let f = self.net.forward(x * c_in, c_noise);
        (f - target).powi_scalar(2).mean()
    }

    /// One optimisation step on the batch; returns its loss.
    pub fn train_step(&mut self, y: Tensor<4>) -> Result<f64, TrainError> {
        let loss = self.loss(y);
        let grads = GradientsParams::from_grads(loss.backward(), &self.net);
        let value: f64 = loss.into_scalar::<f32>() as f64;
        if !value.is_finite() {
            return Err(TrainError::NonFinite(self.step));
        }
        let lr = self.learning_rate();
        self.net = self.optim.step(lr, self.net.clone(), grads);
        self.step += 1;
        // EDM: β = 0.5^(batch / half-life).
        let decay = 0.5f64.powf(self.config.batch_size as f64 / self.ema_halflife(self.images_seen()).max(1e-8));
        self.ema = ema_update(self.ema.clone(), &self.net, decay);
        self.last_loss = value;
        Ok(value)
    }

    /// Seconds spent training this run, over all sessions.
    pub fn wall_time(&self) -> f64 {
        self.log.wall_time()
    }

    /// The EMA weights as a model for sampling.
    pub fn ema_model(&self) -> ScoreModel {
        ScoreModel { net: Network::Unet(self.ema.clone()), param: Parameterisation::Edm { sigma_data: self.sigma_data }, sde: self.sde }
    }

    /// A model card for the EMA weights as they are now, with the whole training record: steps,
    /// images, batch, learning rate, EMA half-life, wall time, every session up to this step,
    /// the last loss and the seed (the CLI adds the command line; snapshots ship as they are).
    pub fn card(&self, name: &str) -> ModelCard {
        let mut card = ModelCard::new(name, Architecture::Unet(self.arch.clone()), Parameterisation::Edm { sigma_data: self.sigma_data }, self.sde);
        card.training = crate::store::card::TrainingRecord {
            steps: Some(self.step),
            images_seen: Some(self.images_seen()),
            batch_size: Some(self.config.batch_size),
            learning_rate: Some(self.config.learning_rate),
            ema_halflife_images: Some(self.config.ema_halflife_images),
            final_loss: self.last_loss.is_finite().then_some(self.last_loss),
            seed: Some(self.config.seed),
            learning_rate_schedule: Some(self.schedule_text()),
            ..self.log.record(self.step)
        };
        card
    }

    /// Starts a new session record (the CLI calls this once per process).
    pub fn begin_session(&mut self, hardware: String) {
        self.log.begin_session(hardware, self.step);
    }

    /// Trains until step `until` (at most `config.steps`), printing progress, logging the
    /// learning curve, writing a checkpoint every `checkpoint_every` steps (and at the end) and
    /// an EMA snapshot into `snapshots` every `snapshot_every_images` images.
    pub fn run(&mut self, data: &Images, checkpoint: &Path, snapshots: Option<&Path>, until: u64) -> Result<(), TrainError> {
        let until = until.min(self.config.steps);
        let start = Instant::now();
        let first = self.step;
        let mut smoothed = f64::NAN;
        let every = self.config.snapshot_every_images;
        while self.step < until {
            let before = self.images_seen();
            let batch = self.next_batch(data);
            let loss = self.train_step(batch)?;
            smoothed = if smoothed.is_nan() { loss } else { 0.98 * smoothed + 0.02 * loss };
            let done = self.step - first;
            if self.step % 50 == 0 || self.step == until {
                let rate = done as f64 / start.elapsed().as_secs_f64();
                let eta = (until - self.step) as f64 / rate;
                eprintln!(
                    "step {}/{}  images {}  loss {smoothed:.4}  {rate:.2} steps/s  lr {:.2e}  ETA {}",
                    self.step,
                    until,
                    self.images_seen(),
                    self.learning_rate(),
                    format_secs(eta)
                );
                self.log.pending_curve.push(format!(
                    "{}\t{}\t{:.1}\t{smoothed:.5}\t{:.3e}\t{:.0}",
                    self.step,
                    self.images_seen(),
                    self.wall_time(),
                    self.learning_rate(),
                    self.ema_halflife(self.images_seen())
                ));
            }
            if let Some(dir) = snapshots {
                if every > 0 && self.images_seen() / every > before / every {
                    let path = self.save_snapshot(dir, data)?;
                    eprintln!("snapshot {}", path.display());
                }
            }
            if self.step % self.config.checkpoint_every == 0 || self.step == until {
                self.save_checkpoint(checkpoint)?;
            }
        }
        Ok(())
    }
}

/// The cool-down's factor on the learning rate after `images` images: 1 before
/// `cooldown_start_images`, then 1 − √p with p the share of the cool-down done, 0 after it.
pub fn cooldown_factor(config: &TrainConfig, images: u64) -> f64 {
    if config.cooldown_images == 0 || images < config.cooldown_start_images {
        return 1.0;
    }
    let p = (images - config.cooldown_start_images) as f64 / config.cooldown_images as f64;
    1.0 - p.min(1.0).sqrt()
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

/// Every float parameter of a network, flattened in visiting order (to compare two runs).
pub fn flat_params(net: &UNet) -> Vec<f32> {
    let mut c = Collect(Vec::new());
    net.visit(&mut c);
    c.0.into_iter().flat_map(|t| t.into_data().try_to_vec::<f32>().expect("f32 parameters")).collect()
}

fn ema_update(ema: UNet, net: &UNet, decay: f64) -> UNet {
    let mut collect = Collect(Vec::new());
    net.visit(&mut collect);
    ema.map(&mut EmaMapper { params: collect.0.into_iter(), decay })
}

#[cfg(test)]
mod tests;
