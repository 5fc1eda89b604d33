//! Consistency distillation (Song, Dhariwal, Chen & Sutskever 2023, "Consistency Models",
//! algorithm 2), with the improvements of Song & Dhariwal 2023 ("Improved Techniques for Training
//! Consistency Models": no EMA in the target, a pseudo-Huber distance, a doubling curriculum of
//! discretisation steps, noise levels drawn from a discretised log-normal, weights 1/Δσ).
//!
//! A student f_θ with the consistency parameterisation ([`crate::precond::consistency_coefficients`])
//! starts from the teacher's network. Each step draws clean images y, an interval i of the grid
//! σ_min = σ_1 < … < σ_{N+1} = σ_max, and x = y + σ_{i+1} z; one Heun step of the teacher's
//! probability-flow ODE dx/dσ = (x − D(x; σ))/σ carries x down to x̂ at σ_i, and the loss is
//!
//! λ(σ_i) · d(f_θ(x, σ_{i+1}), sg[f_θ(x̂, σ_i)]),  λ = 1/(σ_{i+1} − σ_i),  d(a, b) = √(‖a − b‖² + c²) − c,
//!
//! with sg the stop-gradient (the target network is the student itself, without autodiff) and
//! c = 0.00054·√(pixels) (their §3.3). The boundary condition makes f_θ(x̂, σ_1) = x̂, which
//! anchors the whole chain at the data.
//!
//! The teacher may be autoguided (Karras et al. 2024): its ODE then follows the guided denoiser
//! D_w = D_bad + w·(D − D_bad) where guidance acts ([`Autoguidance::acts_at`]), the one the page
//! samples the teacher with, so the student learns the flow of the teacher as readers see it.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::checkpoint::{RunState, begin_checkpoint, finish_checkpoint, load_moments, read_state, save_moments};
use super::{RunLog, TrainError, ckpt_err};
use crate::data::{DataSpec, Images};
use crate::error::ConfigError;
use crate::model::{Architecture, Network, ScoreModel};
use crate::nn::unet::{UNet, UNetConfig};
use crate::precond::{Coefficients, Parameterisation, consistency_coefficients, edm_coefficients};
use crate::rng::SplitMix;
use crate::sampling::autoguidance::Autoguidance;
use crate::sampling::karras::karras_sigmas;
use crate::sampling::{Noise, Sampler};
use crate::sde::Sde;
use crate::store::ModelCard;
use crate::store::card::TrainingRecord;

/// The settings of a distillation run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DistillConfig {
    pub steps: u64,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// The curriculum's discretisation steps: N doubles from `intervals_start` to `intervals_end`
    /// over the run (Song & Dhariwal 2023, §3.4: 10 to 1280).
    pub intervals_start: usize,
    pub intervals_end: usize,
    /// ln σ of the training levels ~ N(p_mean, p_std²), discretised to the grid (their §3.5:
    /// −1.1 and 2.0).
    pub p_mean: f64,
    pub p_std: f64,
}

impl Default for DistillConfig {
    fn default() -> Self {
        Self { steps: 100_000, batch_size: 32, learning_rate: 1e-4, seed: 0, checkpoint_every: 500, intervals_start: 10, intervals_end: 1280, p_mean: -1.1, p_std: 2.0 }
    }
}

/// The most intervals a curriculum's grid may have (each is a teacher step apart).
pub const MAX_INTERVALS: usize = 100_000;

impl DistillConfig {
    /// Checks the settings a run cannot start with: an empty batch, a learning rate or σ
    /// distribution that is not a positive finite number, or a curriculum that does not go from
    /// `1 ≤ intervals_start ≤ intervals_end ≤ MAX_INTERVALS` (the grid only ever grows).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.batch_size == 0 {
            return Err(ConfigError::invalid("batch_size", "must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(ConfigError::invalid("learning_rate", format!("must be a positive number, got {}", self.learning_rate)));
        }
        if !(self.p_mean.is_finite() && self.p_std.is_finite() && self.p_std > 0.0) {
            return Err(ConfigError::invalid("p_std", format!("p_mean must be finite and p_std positive, got {} and {}", self.p_mean, self.p_std)));
        }
        if !(1..=MAX_INTERVALS).contains(&self.intervals_start) || self.intervals_end < self.intervals_start || self.intervals_end > MAX_INTERVALS {
            return Err(ConfigError::invalid(
                "intervals",
                format!("the curriculum needs 1 ≤ intervals_start ≤ intervals_end ≤ {MAX_INTERVALS}, got {} and {}", self.intervals_start, self.intervals_end),
            ));
        }
        Ok(())
    }
}

/// The worse model that autoguides the teacher, as a run records it: its card and the guidance
/// (at noise levels above `min_sigma`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuideRecord {
    pub card: String,
    pub weight: f64,
    pub min_sigma: f64,
}

impl GuideRecord {
    pub fn guidance(&self) -> Autoguidance {
        Autoguidance { weight: self.weight, min_sigma: self.min_sigma, max_sigma: f64::INFINITY }
    }
}

/// The guide's network, its σ_data, and the record it was given with.
struct TeacherGuide {
    net: UNet,
    sigma_data: f64,
    record: GuideRecord,
}

/// N, the number of intervals of the grid at `step` of a run of `total` steps (Song & Dhariwal
/// 2023, eq. 6): N = min(s₀·2^⌊step/K′⌋, s₁) with K′ = ⌊total/(⌊log₂(s₁/s₀)⌋ + 1)⌋, so every
/// value from s₀ to s₁ gets an equal share of the run.
pub fn intervals(step: u64, total: u64, start: usize, end: usize) -> usize {
    let doublings = ((end / start.max(1)).max(1) as f64).log2().floor() as u64;
    let stage = (total / (doublings + 1)).max(1);
    let n = start as u64 * 2u64.saturating_pow((step / stage).min(62) as u32);
    n.min(end as u64) as usize
}

/// One value per image of a batch, [B].
fn column(values: impl Iterator<Item = f64>, device: &Device) -> Tensor<1> {
    let values: Vec<f32> = values.map(|v| v as f32).collect();
    let b = values.len();
    Tensor::from_data(TensorData::new(values, [b]), device)
}

/// The same, shaped [B, 1, 1, 1] to scale images.
fn per_image(values: impl Iterator<Item = f64>, device: &Device) -> Tensor<4> {
    let column = column(values, device);
    let b = column.dims()[0];
    column.reshape([b, 1, 1, 1])
}

/// The EDM denoiser or consistency function of a U-Net, c_skip·x + c_out·F(c_in·x, c_noise), with
/// each image of the batch at its own σ.
fn precondition(net: &UNet, x: Tensor<4>, coefs: &[Coefficients]) -> Tensor<4> {
    let device = x.device();
    let c_skip = per_image(coefs.iter().map(|c| c.c_skip), &device);
    let c_out = per_image(coefs.iter().map(|c| c.c_out), &device);
    let c_in = per_image(coefs.iter().map(|c| c.c_in), &device);
    let out = net.forward(x.clone() * c_in, column(coefs.iter().map(|c| c.c_noise), &device));
    x * c_skip + out * c_out
}

/// The state of a distillation run: the frozen teacher (an EDM U-Net), the student on an autodiff
/// device, its optimiser and the generators.
pub struct Distiller {
    pub config: DistillConfig,
    teacher: UNet,
    /// The teacher's worse model, when the teacher's ODE is autoguided.
    guide: Option<TeacherGuide>,
    pub student: UNet,
    arch: UNetConfig,
    optim: ModuleOptimizer,
    sde: Sde,
    sigma_data: f64,
    sigma_min: f64,
    sigma_max: f64,
    pub step: u64,
    noise: Noise,
    host_rng: SplitMix,
    device: Device,
    /// The teacher's card, as the run was started with it.
    pub teacher_card: String,
    /// The card of the consistency model the student started from, when not the teacher.
    init: Option<String>,
    pub data: DataSpec,
    pub last_loss: f64,
    /// Sessions, wall time, learning-curve rows not yet written.
    pub log: RunLog,
}

/// Saved beside the student and the moments in a distillation checkpoint.
#[derive(Serialize, Deserialize)]
struct DistillState {
    config: DistillConfig,
    teacher_card: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    guide: Option<GuideRecord>,
    /// The consistency model the student started from, when not the teacher ([`Distiller::starting_from`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    init: Option<String>,
    arch: UNetConfig,
    sde: Sde,
    sigma_data: f64,
    #[serde(flatten)]
    run: RunState,
}

/// Header of a distillation checkpoint's `curve.tsv`.
pub const DISTILL_CURVE_HEADER: &str = "step\timages\twall_time_s\tloss\tintervals";

impl Distiller {
    /// A run from `teacher`, an EDM U-Net (as loaded, on a device without autodiff); the student
    /// starts as a copy of its weights on `device`'s autodiff twin. σ_min and σ_max: the noise
    /// levels of the teacher's SDE at its ends.
    pub fn new(teacher: &ScoreModel, arch: &UNetConfig, teacher_card: &str, data: DataSpec, device: &Device, config: DistillConfig) -> Result<Self, TrainError> {
        let (Network::Unet(net), Parameterisation::Edm { sigma_data }) = (&teacher.net, teacher.param) else {
            return Err(TrainError::Config(ConfigError::invalid("teacher", format!("must be an EDM U-Net (a score model trained by `scorefield train`); `{teacher_card}` is a {} network with the `{}` parameterisation", match teacher.net { Network::Unet(_) => "U-Net", Network::Ncsn(_) => "first (ncsn)" }, teacher.param.name()))));
        };
        config.validate()?;
        let arch = arch.clone();
        let mut student = arch.init(&device.clone().autodiff())?;
        crate::store::fill(&mut student, &crate::store::to_safetensors(net)?)?;
        let sde = teacher.sde;
        let (sigma_min, sigma_max) = sde.noise_levels();
        Ok(Self {
            optim: AdamConfig::new().init(),
            noise: Noise::new(config.seed ^ 0xc0de),
            host_rng: SplitMix::new(config.seed ^ 0xd157),
            config,
            teacher: net.clone(),
            guide: None,
            student: student.with_frozen_features(),
            arch,
            sde,
            sigma_data,
            sigma_min,
            sigma_max,
            step: 0,
            device: device.clone(),
            teacher_card: teacher_card.into(),
            init: None,
            data,
            last_loss: f64::NAN,
            log: RunLog::default(),
        })
    }

    /// Autoguides the teacher's ODE by `guide`, a worse EDM U-Net of the same data and noise
    /// levels (the caller checks its card against the teacher's), as `record` says.
    pub fn with_guide(mut self, guide: &ScoreModel, record: GuideRecord) -> Result<Self, TrainError> {
        let (Network::Unet(net), Parameterisation::Edm { sigma_data }) = (&guide.net, guide.param) else {
            return Err(TrainError::Config(ConfigError::invalid("guide", format!("`{}` must be an EDM U-Net (a score model trained by `scorefield train`)", record.card))));
        };
        record.guidance().validate().map_err(|e| TrainError::Config(ConfigError::invalid("autoguidance", e.to_string())))?;
        self.guide = Some(TeacherGuide { net: net.clone(), sigma_data, record });
        Ok(self)
    }

    /// The autoguidance of the teacher, if any.
    pub fn guide(&self) -> Option<&GuideRecord> {
        self.guide.as_ref().map(|g| &g.record)
    }

    /// Starts the student from `init` (its card: `name`), a consistency model of this run's
    /// network, SDE and σ_data (an earlier student, to go on with other settings: a new dropout
    /// rate, learning rate or batch), instead of from the teacher's weights.
    pub fn starting_from(mut self, init: &ScoreModel, name: &str) -> Result<Self, TrainError> {
        let refuse = |why: String| TrainError::Config(ConfigError::invalid("init", format!("`{name}` {why}")));
        let Network::Unet(net) = &init.net else { return Err(refuse("is not a U-Net".into())) };
        if init.param != self.student_param() || init.sde != self.sde {
            return Err(refuse(format!("must be a consistency model of the teacher's SDE and σ_data; it is a `{}` model on {:?}", init.param.name(), init.sde)));
        }
        let weights = crate::store::to_safetensors(net)?;
        crate::store::fill(&mut self.student, &weights).map_err(|e| refuse(format!("does not fit the student's network: {e}")))?;
        self.student = self.student.with_frozen_features();
        self.init = Some(name.into());
        Ok(self)
    }

    /// The student's parameterisation: consistency, with the teacher's σ_data and σ̂_min.
    fn student_param(&self) -> Parameterisation {
        Parameterisation::Consistency { sigma_data: self.sigma_data, sigma_min: self.sigma_min }
    }

    /// The student as a model: the consistency parameterisation on the teacher's SDE.
    pub fn student_model(&self) -> ScoreModel {
        ScoreModel { net: Network::Unet(self.student.valid()), param: self.student_param(), sde: self.sde }
    }

    /// The student's card: a consistency model sampled with `consistency`, with the run's record.
    pub fn card(&self, name: &str) -> ModelCard {
        let model = self.student_model();
        let mut card = ModelCard::new(name, Architecture::Unet(self.arch.clone()), model.param, model.sde);
        card.sampling.sampler = Sampler::Consistency;
        card.training = TrainingRecord {
            steps: Some(self.step),
            images_seen: Some(self.images_seen()),
            batch_size: Some(self.config.batch_size),
            learning_rate: Some(self.config.learning_rate),
            final_loss: self.last_loss.is_finite().then_some(self.last_loss),
            seed: Some(self.config.seed),
            distilled_from: Some({
                let teacher = match self.guide() {
                    None => self.teacher_card.clone(),
                    Some(g) => format!("{}, autoguided by {} (w = {}, where σ > {})", self.teacher_card, g.card, g.weight, g.min_sigma),
                };
                match &self.init {
                    None => teacher,
                    Some(init) => format!("{teacher}; the student started from {init}"),
                }
            }),
            ..self.log.record(self.step)
        };
        card
    }

    pub fn images_seen(&self) -> u64 {
        self.step * self.config.batch_size as u64
    }

    pub fn wall_time(&self) -> f64 {
        self.log.wall_time()
    }

    /// Starts a new session record (the CLI calls this once per process).
    pub fn begin_session(&mut self, hardware: String) {
        self.log.begin_session(hardware, self.step);
    }

    /// Writes `dir/{student.bpk, optim.bpk, state.json, curve.tsv}` as the trainer writes its
    /// checkpoints (Adam's moments in bfloat16; swapped in by renames).
    pub fn save_checkpoint(&mut self, dir: &Path) -> Result<(), TrainError> {
        let tmp = begin_checkpoint(dir)?;
        self.student.clone().save_file(tmp.join("student.bpk")).map_err(|e| ckpt_err(&tmp, e))?;
        self.optim = save_moments(&self.optim, &tmp)?;
        let run = RunState::now(self.step, &self.noise, self.host_rng, self.last_loss, &mut self.log, &self.data);
        let state = DistillState { config: self.config.clone(), teacher_card: self.teacher_card.clone(), guide: self.guide().cloned(), init: self.init.clone(), arch: self.arch.clone(), sde: self.sde, sigma_data: self.sigma_data, run };
        finish_checkpoint(dir, &tmp, &state, DISTILL_CURVE_HEADER, &mut self.log)
    }

    /// The teacher's card that the checkpoint in `dir` was distilled from.
    pub fn checkpoint_teacher(dir: &Path) -> Result<String, TrainError> {
        Ok(read_state::<DistillState>(dir)?.teacher_card)
    }

    /// The teacher's guide that the checkpoint in `dir` was distilled with, if any.
    pub fn checkpoint_guide(dir: &Path) -> Result<Option<GuideRecord>, TrainError> {
        Ok(read_state::<DistillState>(dir)?.guide)
    }

    /// Restores a run from its checkpoint, its teacher and its guide (loaded by the caller from
    /// [`Distiller::checkpoint_teacher`] and [`Distiller::checkpoint_guide`]). `steps` may extend
    /// the run.
    pub fn load_checkpoint(dir: &Path, teacher: &ScoreModel, guide: Option<&ScoreModel>, device: &Device, steps: Option<u64>) -> Result<Self, TrainError> {
        let state: DistillState = read_state(dir)?;
        let mut d = Distiller::new(teacher, &state.arch, &state.teacher_card, state.run.data.clone(), device, state.config.clone())?;
        match (state.guide.clone(), guide) {
            (Some(record), Some(guide)) => d = d.with_guide(guide, record)?,
            (None, None) => {}
            (Some(record), None) => return Err(ckpt_err(dir, format!("was distilled from a teacher autoguided by `{}`: load that model too", record.card))),
            (None, Some(_)) => return Err(ckpt_err(dir, "was distilled from a teacher without autoguidance, and a guide model was given")),
        }
        if d.sde != state.sde || d.sigma_data != state.sigma_data {
            return Err(ckpt_err(dir, format!("was distilled from another teacher than `{}` holds now (architecture, SDE or σ_data differ)", state.teacher_card)));
        }
        d.init = state.init.clone();
        d.student = d.student.try_load_file(dir.join("student.bpk")).map_err(|e| ckpt_err(dir, e))?.with_frozen_features();
        d.optim = load_moments(AdamConfig::new().init(), dir)?;
        d.step = state.run.step;
        d.noise = Noise::resume(state.config.seed ^ 0xc0de, state.run.noise_draws);
        d.host_rng = state.run.host_rng;
        d.last_loss = state.run.restore(&mut d.log);
        if let Some(steps) = steps {
            d.config.steps = steps;
        }
        Ok(d)
    }

    /// A batch of training images [B, C, H, W] in [0, 1] on the autodiff device.
    pub fn next_batch(&mut self, data: &Images) -> Tensor<4> {
        let b = self.config.batch_size;
        let idx: Vec<usize> = (0..b).map(|_| self.host_rng.below(data.len())).collect();
        let [c, h, w] = data.shape;
        Tensor::from_data(TensorData::new(data.floats(&idx), [b, c, h, w]), &self.device.clone().autodiff())
    }

    /// Distils until step `until` (at most `config.steps`), printing progress, logging the curve,
    /// writing a checkpoint every `checkpoint_every` steps and at the end.
    pub fn run(&mut self, data: &Images, checkpoint: &Path, until: u64) -> Result<(), TrainError> {
        let until = until.min(self.config.steps);
        let start = Instant::now();
        let first = self.step;
        let mut smoothed = f64::NAN;
        while self.step < until {
            let batch = self.next_batch(data);
            let loss = self.train_step(batch)?;
            smoothed = if smoothed.is_nan() { loss } else { 0.98 * smoothed + 0.02 * loss };
            if self.step % 50 == 0 || self.step == until {
                let n = intervals(self.step, self.config.steps, self.config.intervals_start, self.config.intervals_end);
                let rate = (self.step - first) as f64 / start.elapsed().as_secs_f64();
                eprintln!("step {}/{}  images {}  loss {smoothed:.4}  N {n}  {rate:.2} steps/s", self.step, until, self.images_seen());
                self.log.pending_curve.push(format!("{}\t{}\t{:.1}\t{smoothed:.5}\t{n}", self.step, self.images_seen(), self.wall_time()));
            }
            if self.step % self.config.checkpoint_every.max(1) == 0 || self.step == until {
                self.save_checkpoint(checkpoint)?;
            }
        }
        Ok(())
    }

    /// The grid now (ascending) and, per image, the interval i (levels σ_i < σ_{i+1}): ln σ drawn
    /// from N(p_mean, p_std²) until it falls inside [σ_min, σ_max), then the interval holding it.
    fn draw_intervals(&mut self, b: usize) -> (Vec<f64>, Vec<usize>) {
        let n = intervals(self.step, self.config.steps, self.config.intervals_start, self.config.intervals_end);
        let mut grid = karras_sigmas(n + 1, self.sigma_min, self.sigma_max, 7.0);
        grid.pop();
        grid.reverse();
        let picks = (0..b).map(|_| loop {
            let sigma = (self.config.p_mean + self.config.p_std * self.host_rng.normal()).exp();
            if sigma >= self.sigma_min && sigma < self.sigma_max {
                break grid.partition_point(|&s| s <= sigma).clamp(1, n) - 1;
            }
        }).collect();
        (grid, picks)
    }

    /// The teacher's denoiser at σ (per image): D, or with a guide D_bad + w·(D − D_bad) for the
    /// images where guidance acts (Karras et al. 2024, eq. 2; `sampling::autoguidance`).
    fn teacher_denoise(&self, x: Tensor<4>, sigmas: &[f64]) -> Tensor<4> {
        let edm = |sigma_data: f64| sigmas.iter().map(|&s| edm_coefficients(s, sigma_data)).collect::<Vec<_>>();
        let d = precondition(&self.teacher, x.clone(), &edm(self.sigma_data));
        let Some(guide) = &self.guide else { return d };
        let guidance = guide.record.guidance();
        let weights: Vec<f64> = sigmas.iter().map(|&s| if guidance.acts_at(s) { guidance.weight } else { 1.0 }).collect();
        if weights.iter().all(|&w| w == 1.0) {
            return d;
        }
        let bad = precondition(&guide.net, x.clone(), &edm(guide.sigma_data));
        // D_bad + w·(D − D_bad), written as D + (w − 1)·(D − D_bad): exactly D where w = 1.
        d.clone() + (d - bad) * per_image(weights.into_iter().map(|w| w - 1.0), &x.device())
    }

    /// One Heun step of the teacher's probability-flow ODE dx/dσ = (x − D(x; σ))/σ from σ = `hi`
    /// down to `lo` (per image), outside the autodiff graph.
    fn teacher_step(&self, x: Tensor<4>, lo: &[f64], hi: &[f64]) -> Tensor<4> {
        let device = x.device();
        let slope = |x: Tensor<4>, sigmas: &[f64]| {
            let d = self.teacher_denoise(x.clone(), sigmas);
            (x - d) / per_image(sigmas.iter().copied(), &device)
        };
        let step = per_image(lo.iter().zip(hi).map(|(l, h)| l - h), &device);
        let d1 = slope(x.clone(), hi);
        let euler = x.clone() + d1.clone() * step.clone();
        x + (d1 + slope(euler, lo)) * step * 0.5
    }

    /// The distillation loss of a batch of clean images y (the batch mean of λ·d).
    pub fn loss(&mut self, y: Tensor<4>) -> Tensor<1> {
        let [b, c, h, w] = y.dims();
        let (grid, picks) = self.draw_intervals(b);
        let (lo, hi): (Vec<f64>, Vec<f64>) = picks.iter().map(|&i| (grid[i], grid[i + 1])).unzip();
        let x = y.clone() + self.noise.normal_like(&y) * per_image(hi.iter().copied(), &y.device());
        let x_hat = self.teacher_step(x.clone().without_autodiff(), &lo, &hi);
        // The target: the student itself at σ_i, without gradients (Song & Dhariwal 2023, §3.2).
        let consistency = |sigmas: &[f64]| sigmas.iter().map(|&s| consistency_coefficients(s, self.sigma_data, self.sigma_min)).collect::<Vec<_>>();
        let target = precondition(&self.student.valid(), x_hat, &consistency(&lo));
        self.noise.seed_device(&y.device());
        let online = precondition(&self.student, x, &consistency(&hi));
        let huber_c = 0.00054 * ((c * h * w) as f64).sqrt();
        let distance = ((online - target).powi_scalar(2).sum_dims(&[1, 2, 3]).reshape([b]) + huber_c * huber_c).sqrt() - huber_c;
        (distance * column(lo.iter().zip(&hi).map(|(l, h)| 1.0 / (h - l)), &y.device())).mean()
    }

    /// One Adam step on the batch; returns its loss.
    pub fn train_step(&mut self, y: Tensor<4>) -> Result<f64, TrainError> {
        let loss = self.loss(y);
        let grads = GradientsParams::from_grads(loss.backward(), &self.student);
        let value = loss.into_scalar::<f32>() as f64;
        if !value.is_finite() {
            return Err(TrainError::NonFinite(self.step));
        }
        self.student = self.optim.step(self.config.learning_rate, self.student.clone(), grads);
        self.step += 1;
        self.last_loss = value;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (UNetConfig, ScoreModel) {
        let arch = UNetConfig { channels: 1, height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, dropout: 0.0, ..Default::default() };
        let net = arch.init(&Device::flex()).unwrap();
        (arch, ScoreModel { net: Network::Unet(net), param: Parameterisation::Edm { sigma_data: 0.3 }, sde: Sde::ve(40.0) })
    }

    /// The curriculum doubles N from s₀ to s₁ in ⌊log₂(s₁/s₀)⌋ + 1 equal stages: 10, 20, …, 1280
    /// over eight eighths of the run, and stays at s₁ at the end.
    #[test]
    fn the_curriculum_doubles_the_intervals_in_equal_stages() {
        let at = |step| intervals(step, 8000, 10, 1280);
        assert_eq!([at(0), at(999), at(1000), at(2500), at(7000), at(7999), at(9000)], [10, 10, 20, 40, 1280, 1280, 1280]);
        assert_eq!(intervals(5, 10, 2, 2), 2);
    }

    /// Distillation steps on one fixed batch (same draws each time) lower the loss, from a
    /// student that starts as the teacher; a teacher that is no EDM U-Net is refused by name.
    #[test]
    fn distillation_steps_lower_the_loss_on_a_fixed_batch() {
        let device = Device::flex();
        let (arch, teacher) = tiny();
        let config = DistillConfig { batch_size: 8, learning_rate: 2e-3, intervals_start: 4, intervals_end: 4, ..Default::default() };
        let mut d = Distiller::new(&teacher, &arch, "tiny.json", DataSpec::Mnist, &device, config).unwrap();
        let y = Tensor::<4>::random([8, 1, 8, 8], burn::tensor::Distribution::Uniform(0.0, 1.0), &device.clone().autodiff());
        let eval = |d: &mut Distiller| {
            d.noise = Noise::new(5);
            d.host_rng = SplitMix::new(9);
            d.loss(y.clone()).into_scalar::<f32>()
        };
        let before = eval(&mut d);
        for _ in 0..40 {
            d.noise = Noise::new(5);
            d.host_rng = SplitMix::new(9);
            d.train_step(y.clone()).unwrap();
        }
        let after = eval(&mut d);
        assert!(after < 0.7 * before, "loss {before} → {after}");
        let cm = ScoreModel { param: Parameterisation::Consistency { sigma_data: 0.3, sigma_min: 0.002 }, ..teacher };
        let err = Distiller::new(&cm, &arch, "cm.json", DataSpec::Mnist, &device, DistillConfig::default()).err().unwrap().to_string();
        assert!(err.contains("cm.json") && err.contains("EDM U-Net") && err.contains("`consistency`"), "{err}");
    }

    /// A curriculum whose grid would shrink (start > end), an empty grid, an empty batch or a
    /// learning rate that is no positive number cannot start a run: `Distiller::new` refuses each
    /// with the setting named (so a library caller and a resumed checkpoint are held to what the
    /// CLI is).
    #[test]
    fn settings_a_run_cannot_start_with_are_refused_by_name() {
        let device = Device::flex();
        let (arch, teacher) = tiny();
        let refused = |config: DistillConfig| Distiller::new(&teacher, &arch, "tiny.json", DataSpec::Mnist, &device, config).err().map(|e| e.to_string()).unwrap_or_default();
        let bad = [
            (DistillConfig { intervals_start: 40, intervals_end: 10, ..Default::default() }, "40 and 10"),
            (DistillConfig { intervals_start: 0, intervals_end: 10, ..Default::default() }, "0 and 10"),
            (DistillConfig { intervals_end: MAX_INTERVALS + 1, ..Default::default() }, "intervals"),
            (DistillConfig { batch_size: 0, ..Default::default() }, "batch_size"),
            (DistillConfig { learning_rate: f64::NAN, ..Default::default() }, "learning_rate"),
            (DistillConfig { p_std: 0.0, ..Default::default() }, "p_std"),
        ];
        for (config, named) in bad {
            let err = refused(config.clone());
            assert!(err.contains(named), "{config:?}: {err}");
        }
        assert!(refused(DistillConfig { intervals_start: 18, intervals_end: 18, ..Default::default() }).is_empty(), "a fixed grid is a valid curriculum");
    }

    /// The target comes from one Heun step of the teacher's ODE. An untrained U-Net outputs 0, so
    /// its denoiser is D = c_skip·x = σ_d²/(σ² + σ_d²)·x and its ODE dx/dσ = σx/(σ² + σ_d²) has the
    /// solution x ∝ √(σ² + σ_d²): from σ = 2 to 1.5 (σ_d = 0.3) the step lands within Heun's
    /// local error of x·√(1.5² + 0.09)/√(2² + 0.09): 3.8·10⁻⁴ relative by hand, where an Euler
    /// step is off by 1.2·10⁻³.
    #[test]
    fn the_teacher_step_follows_the_teachers_ode() {
        let device = Device::flex();
        let (arch, teacher) = tiny();
        let d = Distiller::new(&teacher, &arch, "tiny.json", DataSpec::Mnist, &device, DistillConfig::default()).unwrap();
        let x = Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Normal(0.0, 2.0), &device);
        let stepped = d.teacher_step(x.clone(), &[1.5, 1.5], &[2.0, 2.0]);
        let exact = x * ((1.5f64 * 1.5 + 0.09).sqrt() / (4.0f64 + 0.09).sqrt());
        let err: f32 = ((stepped - exact.clone()).abs().max() / exact.abs().max()).into_scalar();
        assert!(err < 5e-4, "relative error {err}");
    }

    /// With a guide, the teacher's step follows the guided denoiser D_bad + w·(D − D_bad) where
    /// σ > min_sigma and D alone below: checked against the Heun step computed by hand from the
    /// two networks, for an image above the interval's end and one below it. A guide of another
    /// kind of model is refused by name.
    #[test]
    fn an_autoguided_teacher_steps_along_the_guided_denoiser() {
        let device = Device::flex();
        let (arch, teacher) = tiny();
        // The guide: a smaller U-Net with its last layer's weights nonzero, so its denoiser differs.
        let small = UNetConfig { widths: vec![4, 8], ..arch.clone() };
        let mut net = small.init(&device).unwrap();
        net = net.map(&mut RandomiseAll);
        let guide = ScoreModel { net: Network::Unet(net.clone()), param: Parameterisation::Edm { sigma_data: 0.25 }, sde: Sde::ve(40.0) };
        let record = GuideRecord { card: "guide.json".into(), weight: 2.5, min_sigma: 1.0 };
        let d = Distiller::new(&teacher, &arch, "tiny.json", DataSpec::Mnist, &device, DistillConfig::default()).unwrap().with_guide(&guide, record).unwrap();
        let x = Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Normal(0.0, 2.0), &device);
        let (lo, hi) = ([1.5, 0.3], [2.0, 0.5]);
        let stepped = d.teacher_step(x.clone(), &lo, &hi);
        let Network::Unet(good) = &teacher.net else { unreachable!() };
        let by_hand = |i: usize| {
            let xi = x.clone().slice([i..i + 1]);
            let den = |x: Tensor<4>, s: f64| {
                let g = precondition(good, x.clone(), &[edm_coefficients(s, 0.3)]);
                if s > 1.0 { let b = precondition(&net, x, &[edm_coefficients(s, 0.25)]); b.clone() + (g - b) * 2.5 } else { g }
            };
            let slope = |x: Tensor<4>, s: f64| (x.clone() - den(x, s)) / s;
            let h = lo[i] - hi[i];
            let d1 = slope(xi.clone(), hi[i]);
            let euler = xi.clone() + d1.clone() * h;
            xi + (d1 + slope(euler, lo[i])) * (h * 0.5)
        };
        let expected = Tensor::cat(vec![by_hand(0), by_hand(1)], 0);
        let err: f32 = (stepped.clone() - expected).abs().max().into_scalar();
        assert!(err < 1e-5, "max difference {err}");
        // The guide matters above σ = 1: without it the first image steps elsewhere.
        let alone = Distiller::new(&teacher, &arch, "tiny.json", DataSpec::Mnist, &device, DistillConfig::default()).unwrap().teacher_step(x.clone(), &lo, &hi);
        let moved: f32 = (stepped.clone().slice([0..1]) - alone.clone().slice([0..1])).abs().max().into_scalar();
        let same: f32 = (stepped.slice([1..2]) - alone.slice([1..2])).abs().max().into_scalar();
        assert!(moved > 1e-3 && same == 0.0, "guided above σ = 1: {moved}; below: {same}");
        let cm = ScoreModel { param: Parameterisation::Consistency { sigma_data: 0.3, sigma_min: 0.002 }, ..guide };
        let err = Distiller::new(&teacher, &arch, "tiny.json", DataSpec::Mnist, &device, DistillConfig::default()).unwrap().with_guide(&cm, GuideRecord { card: "cm.json".into(), weight: 2.0, min_sigma: 1.0 }).err().unwrap().to_string();
        assert!(err.contains("cm.json") && err.contains("EDM U-Net"), "{err}");
    }

    /// Sets every float parameter to uniform noise in ±0.3 (an untrained U-Net's zero-initialised
    /// output layer would make every guide's denoiser the same c_skip·x).
    struct RandomiseAll;
    impl burn::module::ModuleMapper for RandomiseAll {
        fn map_float<const D: usize>(&mut self, param: burn::module::Param<Tensor<D>>) -> burn::module::Param<Tensor<D>> {
            param.map(|t| t.random_like(burn::tensor::Distribution::Uniform(-0.3, 0.3)))
        }
    }

    /// A student started from an earlier student holds that student's weights exactly (not the
    /// teacher's), its card and its checkpoint say where it started, and a model that is no
    /// consistency model of the teacher's SDE, or of another network, is refused by name.
    #[test]
    fn a_student_can_start_from_an_earlier_student() {
        let device = Device::flex();
        let (arch, teacher) = tiny();
        let new = || Distiller::new(&teacher, &arch, "tiny.json", DataSpec::Mnist, &device, DistillConfig::default()).unwrap();
        let param = new().student_model().param;
        let earlier = ScoreModel { net: Network::Unet(arch.init(&device).unwrap().map(&mut RandomiseAll)), param, sde: teacher.sde };
        let Network::Unet(earlier_net) = &earlier.net else { unreachable!() };
        let weights = |net: &UNet| crate::store::safetensors::decode(&crate::store::to_safetensors(net).unwrap()).unwrap();
        let d = new().starting_from(&earlier, "early.json").unwrap();
        assert!(weights(&d.student.valid()) == weights(earlier_net), "the student holds the earlier student's weights");
        assert!(weights(&new().student.valid()) != weights(earlier_net), "a new run's student is the teacher's");
        assert_eq!(d.card("tiny-cm").training.distilled_from.as_deref(), Some("tiny.json; the student started from early.json"));
        let dir = std::env::temp_dir().join(format!("scorefield-distill-init-{}", std::process::id()));
        let mut saved = d;
        saved.save_checkpoint(&dir).unwrap();
        let resumed = Distiller::load_checkpoint(&dir, &teacher, None, &device, None).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(resumed.card("tiny-cm").training.distilled_from.unwrap().ends_with("started from early.json"));
        let err = new().starting_from(&teacher, "edm.json").err().unwrap().to_string();
        assert!(err.contains("init") && err.contains("edm.json") && err.contains("consistency model"), "{err}");
        let other = UNetConfig { widths: vec![8, 8], ..arch.clone() };
        let wrong = ScoreModel { net: Network::Unet(other.init(&device).unwrap()), ..earlier };
        let err = new().starting_from(&wrong, "wide.json").err().unwrap().to_string();
        assert!(err.contains("wide.json") && err.contains("does not fit"), "{err}");
    }

    /// The student's card is a consistency model that validates, samples with `consistency`,
    /// and names its teacher.
    #[test]
    fn the_students_card_is_a_consistency_model() {
        let (arch, teacher) = tiny();
        let d = Distiller::new(&teacher, &arch, "www/models/tiny.json", DataSpec::Mnist, &Device::flex(), DistillConfig::default()).unwrap();
        let card = d.card("tiny-consistency");
        card.validate().unwrap();
        assert!(card.parameterisation.is_consistency() && card.sampling.sampler == Sampler::Consistency);
        assert_eq!(card.training.distilled_from.as_deref(), Some("www/models/tiny.json"));
    }
}
