//! The score field in 2-D: the explainer's distributions, the field drawn over them, and particles
//! moved by the project's own samplers (a batch of points is a batch of [N, 2, 1, 1] tensors).
//!
//! The pictures are those of Song & Ermon 2019 (§3, figures 2–3) and Song et al. 2021 (figure 1):
//! the score of a mixture as arrows over its density, Langevin dynamics at one noise level getting
//! the mixture's weights wrong, annealed Langevin getting them right, the reverse SDE and the
//! probability-flow ODE carrying the prior back to the data. The scores are exact
//! ([`crate::mixture`]), so every picture shows what the method does, not what a network learned.

pub mod learned;
mod dynamics;
mod presets;

pub use dynamics::{Dynamics, DynamicsInfo};
pub use presets::{Preset, PresetInfo};


use burn::prelude::*;

use crate::error::{ConfigError, SampleError};
use crate::mixture::Mixture;
use crate::sampling::pc::{self, Corrector, Predictor};
use crate::sampling::{Noise, SampleOptions, Sampler, ScoreFn};
use crate::sde::Sde;

/// The square the pictures show, [−8, 8]²: every preset lies inside it.
pub const VIEW_HALF_WIDTH: f64 = 8.0;
/// σ_max of the explainer's VE SDE, the library's default (Song et al. 2021's CIFAR-10 value):
/// well above the largest distance between a preset's points (14 for the two modes; Song & Ermon
/// 2020, "technique 1"). The prior N(0, σ_max² I) still misses the data's mean (3, 3) by 0.085
/// σ_max along the diagonal, and the deterministic ODE carries that error to the weights (0.78
/// instead of 0.8; at σ_max = 20 it is 0.74): the reverse SDE forgets it.
pub const FIELD_SIGMA_MAX: f64 = crate::sde::VE_SIGMA_MAX;
/// How much a drawn point is smoothed: its component is N(point, s² I) with this s.
pub const DRAWN_POINT_STD: f64 = 0.35;
/// Particles a run starts with.
pub const DEFAULT_PARTICLES: usize = 1000;
/// Frames a run records unless asked otherwise.
pub const DEFAULT_FRAMES: usize = 200;
/// The most particles one run moves.
pub const MAX_PARTICLES: usize = 20_000;
/// The most point updates (particles × updates) one run makes: about a second of the CPU build.
pub const MAX_POINT_UPDATES: usize = 20_000_000;
/// The most cells a side of a grid, and of the time picture.
pub const MAX_GRID: usize = 512;
pub const MAX_SLICE: usize = 1024;
/// The most frames a run records, and the most positions (frames × particles, 8 bytes each).
pub const MAX_FRAMES: usize = 1_000;
pub const MAX_RECORDED_POINTS: usize = 4_000_000;

/// The SDEs the explainer diffuses its data with, the default first.
pub const SDES: [&str; 2] = ["ve", "vp"];
/// The distribution it starts with: the one whose picture shows Langevin's failure.
pub const DEFAULT_PRESET: Preset = Preset::TwoModes;

/// The SDE of that name ([`SDES`]).
pub fn sde(name: &str) -> Result<Sde, ConfigError> {
    match name {
        "ve" => Ok(Sde::ve(FIELD_SIGMA_MAX)),
        "vp" => Ok(Sde::vp()),
        other => Err(ConfigError::invalid("sde", format!("is `{other}`; expected one of {}", SDES.join(", ")))),
    }
}

/// A distribution with its SDE: what the field shows and the particles sample.
#[derive(Clone, Debug)]
pub struct Field {
    pub mixture: Mixture,
    pub sde: Sde,
    /// Whether shares of particles per component mean something (a few modes, not a point set).
    pub modes: bool,
    /// The unit vector u of the time picture ([`Field::slice`]): it shows u·x(t).
    pub direction: [f64; 2],
}

impl Field {
    pub fn preset(preset: Preset, sde: Sde) -> Self {
        // The two modes lie on the diagonal; the others spread along x.
        let direction = if preset == Preset::TwoModes { [std::f64::consts::FRAC_1_SQRT_2; 2] } else { [1.0, 0.0] };
        Field { mixture: preset.mixture(), sde, modes: preset.info().modes, direction }
    }

    /// A reader's drawing: each point smoothed by N(0, [`DRAWN_POINT_STD`]² I).
    pub fn drawn(points: Vec<[f64; 2]>, sde: Sde) -> Result<Self, ConfigError> {
        if points.is_empty() {
            return Err(ConfigError::invalid("points", "are empty: draw at least one point"));
        }
        let mixture = Mixture::from_points(points.into_iter().map(|p| p.to_vec()).collect(), DRAWN_POINT_STD)?;
        Ok(Field { mixture, sde, modes: false, direction: [1.0, 0.0] })
    }

    /// p_t and ∇ log p_t on an n × n grid over the view square, rows from the top (y = +8) down,
    /// x from left to right: `density` [n²] and `score` [n², 2].
    pub fn grid(&self, t: f64, n: usize) -> Result<Grid, ConfigError> {
        if !(2..=MAX_GRID).contains(&n) {
            return Err(ConfigError::invalid("grid", format!("must be in 2..={MAX_GRID} cells a side, got {n}")));
        }
        if !(t.is_finite() && (0.0..=crate::sde::T_END).contains(&t)) {
            return Err(ConfigError::invalid("t", format!("must be in [0, {}], got {t}", crate::sde::T_END)));
        }
        let p = self.mixture.perturbed(&self.sde, t);
        let coord = |i: usize| -VIEW_HALF_WIDTH + 2.0 * VIEW_HALF_WIDTH * (i as f64 + 0.5) / n as f64;
        let mut density = Vec::with_capacity(n * n);
        let mut score = Vec::with_capacity(2 * n * n);
        for row in 0..n {
            for col in 0..n {
                let x = [coord(col), -coord(row)];
                let (log_p, s) = p.log_density_and_score(&x);
                density.push(log_p.exp() as f32);
                score.extend(s.into_iter().map(|v| v as f32));
            }
        }
        Ok(Grid { n, density, score })
    }

    /// The time picture: the density of the projection u·x(t) ([`Field::direction`]), a 1-D mixture
    /// Σ_k w_k N(m u·μ_k, m² s_k² + σ²), for `nt` times from 0 to T (columns, left to right) at
    /// `nx` positions from +8 down to −8 (rows): [nx, nt] row-major.
    pub fn slice(&self, nt: usize, nx: usize) -> Result<Vec<f32>, ConfigError> {
        for (name, n) in [("slice times", nt), ("slice positions", nx)] {
            if !(2..=MAX_SLICE).contains(&n) {
                return Err(ConfigError::invalid(name, format!("must be in 2..={MAX_SLICE}, got {n}")));
            }
        }
        let u = self.direction;
        let projected: Vec<f64> = self.mixture.means.iter().map(|mu| u[0] * mu[0] + u[1] * mu[1]).collect();
        let mut out = vec![0.0f32; nx * nt];
        for col in 0..nt {
            let t = crate::sde::T_END * col as f64 / (nt - 1) as f64;
            let (m, sigma) = self.sde.marginal(t);
            let line = Mixture {
                weights: self.mixture.weights.clone(),
                means: projected.iter().map(|p| vec![m * p]).collect(),
                stds: self.mixture.stds.iter().map(|sk| (m * m * sk * sk + sigma * sigma).sqrt()).collect(),
            };
            for row in 0..nx {
                let p = VIEW_HALF_WIDTH - 2.0 * VIEW_HALF_WIDTH * (row as f64 + 0.5) / nx as f64;
                out[row * nt + col] = line.log_density(&[p]).exp() as f32;
            }
        }
        Ok(out)
    }

    /// The share of `points` ([N, 2] row-major) assigned to each component of the data mixture.
    pub fn shares(&self, points: &[f32]) -> Vec<f64> {
        let mut counts = vec![0usize; self.mixture.components()];
        for p in points.chunks_exact(2) {
            counts[self.mixture.assign(&[p[0] as f64, p[1] as f64])] += 1;
        }
        let n = (points.len() / 2).max(1) as f64;
        counts.into_iter().map(|c| c as f64 / n).collect()
    }

    /// Moves particles with `options.dynamics` along the exact score and records their positions.
    pub async fn particles(&self, options: &ParticleOptions, device: &Device) -> Result<Particles, SampleError> {
        self.particles_with(&self.mixture.score_fn(&self.sde), options, device).await
    }

    /// The same along another score of this field's SDE (a learned one, [`learned`]).
    pub async fn particles_with<S: ScoreFn>(&self, score: &S, options: &ParticleOptions, device: &Device) -> Result<Particles, SampleError> {
        options.validate(&self.sde)?;
        let n = options.particles;
        let mut noise = Noise::new(options.seed);
        let plan = options.plan(&self.sde, &self.mixture)?;
        let start = match plan.start {
            Start::Prior => noise.normal([n, 2, 1, 1], self.sde.prior_std(), device),
            Start::Uniform => noise.uniform([n, 2, 1, 1], -VIEW_HALF_WIDTH, VIEW_HALF_WIDTH, device),
            Start::Data => self.sample_data(n, &mut noise, device).await?,
        };
        let updates = plan.updates();
        let stride = updates.div_ceil(options.frames.max(2) - 1).max(1);
        let mut recorder = Recorder { n, stride, updates, done: 0, frames: Vec::new(), times: Vec::new() };
        recorder.record(&start, plan.times[0]).await?;
        let mut x = start;
        if plan.start == Start::Data {
            // The forward SDE, t increasing: data to noise.
            for w in plan.times.windows(2) {
                x = forward_step(&self.sde, x, w[0], w[1], &mut noise);
                recorder.updated(&x, w[1]).await?;
            }
        }
        let levels = match (plan.start, plan.predictor) {
            (Start::Data, _) => 0,
            (_, Predictor::None) => plan.times.len(),
            _ => plan.times.len() - 1,
        };
        for i in 0..levels {
            let t = plan.times[i];
            let t_next = plan.times.get(i + 1).copied().unwrap_or(t);
            for _ in 0..plan.corrector.steps() {
                x = plan.corrector.update(score, &self.sde, x, t, t_next, &mut noise).0;
                recorder.updated(&x, t).await?;
            }
            if plan.predictor != Predictor::None {
                x = plan.predictor.update(score, &self.sde, x, t, t_next, &mut noise).0;
                recorder.updated(&x, t_next).await?;
            }
        }
        let last = &recorder.frames[recorder.frames.len() - 2 * n..];
        if last.iter().any(|v| !v.is_finite()) {
            return Err(SampleError::NonFinite { sampler: options.dynamics.name(), step: updates, t: plan.times[plan.times.len() - 1], advice: options.dynamics.if_non_finite() });
        }
        let shares = (self.modes && plan.start != Start::Data).then(|| self.shares(last));
        Ok(Particles { count: n, frames: recorder.frames, times: recorder.times, updates, shares })
    }
}

impl Field {
    /// n exact draws from the data mixture: a component by its weight, then N(μ_k, s_k² I).
    async fn sample_data(&self, n: usize, noise: &mut Noise, device: &Device) -> Result<Tensor<4>, SampleError> {
        let u = noise.uniform([n, 1, 1, 1], 0.0, 1.0, device).into_data_async().await.map_err(|e| SampleError::Readback(format!("{e:?}")))?;
        let u = u.try_to_vec::<f32>().map_err(|e| SampleError::Readback(format!("{e:?}")))?;
        let m = &self.mixture;
        let cumulative: Vec<f64> = m.weights.iter().scan(0.0, |acc, w| { *acc += w; Some(*acc) }).collect();
        let mut means = Vec::with_capacity(2 * n);
        let mut stds = Vec::with_capacity(n);
        for &v in &u {
            let k = cumulative.iter().position(|&c| (v as f64) < c).unwrap_or(m.components() - 1);
            means.extend(m.means[k].iter().map(|&c| c as f32));
            stds.push(m.stds[k] as f32);
        }
        let means = Tensor::<4>::from_data(TensorData::new(means, [n, 2, 1, 1]), device);
        let stds = Tensor::<4>::from_data(TensorData::new(stds, [n, 1, 1, 1]), device);
        Ok(means + noise.normal([n, 2, 1, 1], 1.0, device) * stds)
    }
}

/// Euler–Maruyama on the forward SDE dx = f(x, t) dt + g(t) dw (Song et al. 2021, eq. 5), with
/// dt = t_next − t > 0: x + f(x, t) dt + g(t) √dt z.
fn forward_step(sde: &Sde, x: Tensor<4>, t: f64, t_next: f64, noise: &mut Noise) -> Tensor<4> {
    let dt = t_next - t;
    let z = noise.normal_like(&x);
    x.clone() + x * (sde.drift_coef(t) * dt) + z * (sde.diffusion(t) * dt.sqrt())
}

/// p_t and its score on a grid ([`Field::grid`]).
pub struct Grid {
    pub n: usize,
    pub density: Vec<f32>,
    pub score: Vec<f32>,
}

/// A particle run's options; `None` fields take the dynamics' defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticleOptions {
    pub dynamics: Dynamics,
    pub particles: usize,
    /// Langevin steps, predictor steps, or annealed Langevin's noise levels.
    pub steps: Option<usize>,
    /// Corrector steps: T per level for annealed Langevin, M for `pc` (their defaults:
    /// [`crate::sampling::DEFAULT_ALD_STEPS_PER_LEVEL`], 1).
    pub corrector_steps: Option<usize>,
    /// Langevin's noise level σ̂ ([`Sde::noise_level`]; default: the SDE's smallest, σ̂(ε)).
    pub sigma: Option<f64>,
    /// Langevin's step α (default: a tenth of the narrowest perturbed component's variance).
    pub step_size: Option<f64>,
    pub seed: u64,
    /// Positions recorded, at most: the start, every ⌈updates / (frames − 1)⌉-th update and the
    /// last one (so up to `frames`; [`MAX_FRAMES`] and [`MAX_RECORDED_POINTS`] bound it).
    pub frames: usize,
}

impl Default for ParticleOptions {
    fn default() -> Self {
        Self { dynamics: Dynamics::DEFAULT, particles: DEFAULT_PARTICLES, steps: None, corrector_steps: None, sigma: None, step_size: None, seed: 0, frames: DEFAULT_FRAMES }
    }
}

/// Where a run's particles start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// The SDE's prior p_T.
    Prior,
    /// Uniformly over the view (Song & Ermon 2019's Langevin runs).
    Uniform,
    /// Exact draws from the data (the forward SDE).
    Data,
}

impl Start {
    fn name(self) -> &'static str {
        match self {
            Start::Prior => "prior",
            Start::Uniform => "uniform",
            Start::Data => "data",
        }
    }
}

/// The update loop a run makes: a corrector at each time, then a predictor to the next one; or
/// forward steps up the time grid.
struct Plan {
    predictor: Predictor,
    corrector: Corrector,
    times: Vec<f64>,
    start: Start,
}

impl Plan {
    fn updates(&self) -> usize {
        if self.start == Start::Data {
            return self.times.len() - 1;
        }
        let levels = if self.predictor == Predictor::None { self.times.len() } else { self.times.len() - 1 };
        levels * (self.corrector.steps() + usize::from(self.predictor != Predictor::None))
    }
}

impl ParticleOptions {
    fn sample_options(&self) -> SampleOptions {
        let sampler = match self.dynamics {
            Dynamics::Langevin => Sampler::AnnealedLangevin,
            Dynamics::Forward => Sampler::EulerMaruyama,
            Dynamics::Sampler(s) => s,
        };
        SampleOptions { sampler, steps: self.steps.unwrap_or(self.dynamics.default_steps()), corrector_steps: self.corrector_steps, ..Default::default() }
    }

    /// Checks every option, naming the first bad one.
    pub fn validate(&self, sde: &Sde) -> Result<(), SampleError> {
        if !(1..=MAX_PARTICLES).contains(&self.particles) {
            return Err(SampleError::invalid("particles", format!("must be in 1..={MAX_PARTICLES}, got {}", self.particles)));
        }
        if !(2..=MAX_FRAMES).contains(&self.frames) {
            return Err(SampleError::invalid("frames", format!("must be in 2..={MAX_FRAMES}, got {}", self.frames)));
        }
        match self.sample_options().validate(sde) {
            // The library refuses annealed Langevin on VP because a VP *network* is not
            // conditioned on a noise level it could anneal over; the exact score is, on any SDE.
            Err(SampleError::InvalidOption { field: "sampler", .. }) => {}
            other => other?,
        }
        if self.particles.saturating_mul(self.frames) > MAX_RECORDED_POINTS {
            return Err(SampleError::invalid("frames", format!("× particles is {}; at most {MAX_RECORDED_POINTS} positions are recorded per run", self.particles * self.frames)));
        }
        let (lo, hi) = sde.noise_levels();
        if let Some(sigma) = self.sigma {
            if !(sigma.is_finite() && sigma >= lo * (1.0 - 1e-9) && sigma <= hi * (1.0 + 1e-9)) {
                return Err(SampleError::invalid("sigma", format!("must be in [{lo}, {hi}] (the SDE's noise levels), got {sigma}")));
            }
        }
        if let Some(alpha) = self.step_size {
            if !(alpha.is_finite() && alpha > 0.0 && alpha <= 100.0) {
                return Err(SampleError::invalid("step_size", format!("must be in (0, 100], got {alpha}")));
            }
        }
        let steps = self.steps.unwrap_or(self.dynamics.default_steps());
        let per_step = match self.dynamics {
            Dynamics::Langevin | Dynamics::Forward => 1,
            Dynamics::Sampler(s) => s.evals(steps, self.corrector_steps, false).unwrap_or(1) / steps.max(1),
        };
        let work = self.particles.saturating_mul(steps).saturating_mul(per_step.max(1));
        if work > MAX_POINT_UPDATES {
            return Err(SampleError::invalid("particles", format!("× updates is {work}; at most {MAX_POINT_UPDATES} per run (fewer particles or steps)")));
        }
        Ok(())
    }

    fn plan(&self, sde: &Sde, mixture: &Mixture) -> Result<Plan, SampleError> {
        Ok(match self.dynamics {
            Dynamics::Langevin => {
                let sigma = self.sigma.unwrap_or(sde.noise_level(sde.eps()));
                let t = sde.time_of_noise_level(sigma).clamp(sde.eps(), crate::sde::T_END);
                let (m, s) = sde.marginal(t);
                let narrowest = mixture.stds.iter().map(|sk| m * m * sk * sk + s * s).fold(f64::INFINITY, f64::min);
                let alpha = self.step_size.unwrap_or(0.1 * narrowest);
                let steps = self.steps.unwrap_or(self.dynamics.default_steps());
                // One annealed-Langevin level with σ_L = σ(t) takes steps of exactly ε = α.
                let corrector = Corrector::Annealed { eps: alpha, steps: 1, sigma_last: sde.sigma(t) };
                Plan { predictor: Predictor::None, corrector, times: vec![t; steps], start: self.dynamics.start() }
            }
            Dynamics::Forward => {
                let n = self.steps.unwrap_or(self.dynamics.default_steps());
                let times = (0..=n).map(|i| crate::sde::T_END * i as f64 / n as f64).collect();
                Plan { predictor: Predictor::None, corrector: Corrector::None, times, start: self.dynamics.start() }
            }
            Dynamics::Sampler(sampler) => {
                let (predictor, corrector, times) = pc::plan(sampler, sde, &self.sample_options())?;
                Plan { predictor, corrector, times, start: self.dynamics.start() }
            }
        })
    }
}

/// A run's recording: `frames` [F, N, 2] row-major, the time of each frame, and the shares of the
/// final particles per mode (presets with modes).
pub struct Particles {
    pub count: usize,
    pub frames: Vec<f32>,
    pub times: Vec<f64>,
    pub updates: usize,
    pub shares: Option<Vec<f64>>,
}

/// Keeps the start, every `stride`-th update and the last one.
struct Recorder {
    n: usize,
    stride: usize,
    updates: usize,
    done: usize,
    frames: Vec<f32>,
    times: Vec<f64>,
}

impl Recorder {
    /// Counts one update of the particles, now at time t, and records it when due.
    async fn updated(&mut self, x: &Tensor<4>, t: f64) -> Result<(), SampleError> {
        self.done += 1;
        if self.done % self.stride == 0 || self.done == self.updates {
            self.record(x, t).await?;
        }
        Ok(())
    }

    async fn record(&mut self, x: &Tensor<4>, t: f64) -> Result<(), SampleError> {
        let data = x.clone().into_data_async().await.map_err(|e| SampleError::Readback(format!("{e:?}")))?;
        let values = data.try_to_vec::<f32>().map_err(|e| SampleError::Readback(format!("{e:?}")))?;
        debug_assert_eq!(values.len(), 2 * self.n);
        self.frames.extend(values);
        self.times.push(t);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_lie_inside_the_view_and_parse_by_name() {
        for preset in Preset::ALL {
            assert_eq!(preset.name().parse::<Preset>().unwrap(), preset);
            let m = preset.mixture();
            for mu in &m.means {
                assert!(mu.iter().all(|v| v.abs() + 2.0 * m.stds[0] < VIEW_HALF_WIDTH), "{}: {mu:?}", preset.name());
            }
        }
        assert!("nonsense".parse::<Preset>().unwrap_err().to_string().contains("two-modes"));
    }

    /// p_0 of the two-mode preset on a 64² grid sums (times the cell area) to ≈ 1, and its arrows
    /// point from the origin's cell towards the heavier mode at (5, 5).
    #[test]
    fn grid_density_integrates_to_one() {
        let field = Field::preset(Preset::TwoModes, sde("ve").unwrap());
        let n = 64;
        let g = field.grid(0.0, n).unwrap();
        let cell = (2.0 * VIEW_HALF_WIDTH / n as f64).powi(2);
        let mass: f64 = g.density.iter().map(|&p| p as f64 * cell).sum();
        assert!((mass - 1.0).abs() < 0.01, "{mass}");
        let centre = (n / 2) * n + n / 2; // the cell just right of and below the origin
        assert!(g.score[2 * centre] > 0.0 && g.score[2 * centre + 1] > 0.0, "{:?}", &g.score[2 * centre..2 * centre + 2]);
    }
}
