//! Samplers: small functions over a score function `s(x, t)` and an [`Sde`].
//!
//! Every sampler is a loop over one step shape, `(x, t, t_next) -> (x, x_mean)`
//! ([`pc::Predictor`], [`pc::Corrector`]), or the adaptive RK45 ODE solver ([`ode`]). Inpainting
//! wraps the update rather than copying samplers ([`inpaint`]). Randomness is drawn on the host, one
//! SplitMix64 stream per image keyed by (seed, image index, draw) ([`Noise::per_sample`],
//! [`crate::rng::stream_key`]), and uploaded; nothing is read back from the device
//! inside the loop except where the caller's [`Observer`] asks for it and the RK45 error norm.

pub mod autoguidance;
pub mod catalog;
pub mod consistency;
pub mod defaults;
pub mod guidance;
pub mod inpaint;
pub mod interpolate;
pub mod karras;
mod noise;
pub mod ode;
pub mod pc;

use std::str::FromStr;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::SampleError;
use crate::sde::Sde;

pub use inpaint::Known;
pub use noise::Noise;
/// The vocabulary every sampler is written in (defined in [`crate::score`]).
pub use crate::score::{Flow, Observer, ScoreFn, Step, no_observer};

/// The samplers, by the names that the CLI, JavaScript and model cards use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sampler {
    /// Euler–Maruyama on the reverse-time SDE (Song et al. 2021, eq. 6).
    #[serde(rename = "em")]
    EulerMaruyama,
    /// Reverse-diffusion predictor (Song et al. 2021, eq. 47).
    #[serde(rename = "rd")]
    ReverseDiffusion,
    /// Predictor–corrector: reverse diffusion + Langevin corrector (Song et al. 2021, alg. 1–5).
    #[serde(rename = "pc")]
    PredictorCorrector,
    /// Annealed Langevin dynamics (Song & Ermon 2019, alg. 1); VE SDE only.
    #[serde(rename = "ald")]
    AnnealedLangevin,
    /// Probability-flow ODE (Song et al. 2021, eq. 13), Euler steps.
    #[serde(rename = "ode-euler")]
    OdeEuler,
    /// Probability-flow ODE, Heun's second-order steps (Karras et al. 2022, alg. 1).
    #[serde(rename = "ode-heun")]
    OdeHeun,
    /// Probability-flow ODE, adaptive Dormand–Prince RK45 (score_sde's default ODE solver).
    #[serde(rename = "ode-rk45")]
    OdeRk45,
    /// Heun's method on the Karras ρ = 7 noise-level grid, with optional churn (Karras et al.
    /// 2022, alg. 2).
    #[serde(rename = "edm-heun")]
    EdmHeun,
    /// DPM-Solver++(2M) on the Karras grid (Lu et al. 2022, alg. 2).
    #[serde(rename = "dpmpp-2m")]
    DpmSolver2M,
    /// A consistency model's sampler: one evaluation, or a few with re-noising in between (Song
    /// et al. 2023, alg. 1); the only sampler of consistency models, which no other sampler runs.
    #[serde(rename = "consistency")]
    Consistency,
}

impl Sampler {
    /// Every sampler of score models, in the order a reader sees them ([`catalog::samplers_for`],
    /// which puts a model's default first): the few-step samplers, the reverse-SDE samplers, the
    /// probability-flow ODE solvers. ([`Sampler::Consistency`] samples consistency models only.)
    pub const ALL: [Sampler; 9] = [
        Sampler::DpmSolver2M,
        Sampler::EdmHeun,
        Sampler::EulerMaruyama,
        Sampler::ReverseDiffusion,
        Sampler::PredictorCorrector,
        Sampler::AnnealedLangevin,
        Sampler::OdeEuler,
        Sampler::OdeHeun,
        Sampler::OdeRk45,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Sampler::EulerMaruyama => "em",
            Sampler::ReverseDiffusion => "rd",
            Sampler::PredictorCorrector => "pc",
            Sampler::AnnealedLangevin => "ald",
            Sampler::OdeEuler => "ode-euler",
            Sampler::OdeHeun => "ode-heun",
            Sampler::OdeRk45 => "ode-rk45",
            Sampler::EdmHeun => "edm-heun",
            Sampler::DpmSolver2M => "dpmpp-2m",
            Sampler::Consistency => "consistency",
        }
    }

    /// Whether this is the sampler of consistency models.
    pub fn is_consistency(self) -> bool {
        self == Sampler::Consistency
    }

    /// What to change when a run of this sampler produced NaN or ±∞ (the end of its error message).
    pub fn if_non_finite(self) -> &'static str {
        match self {
            Sampler::PredictorCorrector => "try more steps or a smaller snr",
            Sampler::AnnealedLangevin => "try more noise levels or a smaller aldEps",
            Sampler::OdeRk45 => "try a smaller rtol and atol",
            Sampler::EulerMaruyama | Sampler::ReverseDiffusion | Sampler::OdeEuler | Sampler::OdeHeun | Sampler::EdmHeun | Sampler::DpmSolver2M => "try more steps",
            Sampler::Consistency => "the consistency model's output is not finite: check its weights",
        }
    }

    /// The error of a run of this sampler stopped at `step` (time `t`) on NaN or ±∞.
    pub fn non_finite(self, step: usize, t: f64) -> SampleError {
        SampleError::NonFinite { sampler: self.name(), step, t, advice: self.if_non_finite() }
    }

    /// Score evaluations of a run with `steps` steps and `corrector_steps` corrector iterations
    /// (M for PC, T per level for ALD; `None`: the default), the final denoising step included
    /// where the sampler takes one; `None` for the adaptive RK45.
    pub fn evals(self, steps: usize, corrector_steps: Option<usize>, denoise: bool) -> Option<usize> {
        let d = usize::from(denoise);
        Some(match self {
            Sampler::EulerMaruyama | Sampler::ReverseDiffusion | Sampler::OdeEuler => steps + d,
            Sampler::PredictorCorrector => steps * (1 + corrector_steps.unwrap_or(1)) + d,
            Sampler::OdeHeun => 2 * steps + d,
            Sampler::AnnealedLangevin => steps.max(2) * corrector_steps.unwrap_or(DEFAULT_ALD_STEPS_PER_LEVEL) + d,
            Sampler::OdeRk45 => return None,
            // The σ grid ends at 0: the last step already denoises.
            Sampler::EdmHeun => 2 * steps - 1,
            Sampler::DpmSolver2M | Sampler::Consistency => steps,
        })
    }
}

impl FromStr for Sampler {
    type Err = SampleError;
    fn from_str(s: &str) -> Result<Self, SampleError> {
        let every = || Sampler::ALL.into_iter().chain([Sampler::Consistency]);
        every().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<_> = every().map(|m| m.name()).collect();
            SampleError::invalid("sampler", format!("is `{s}`; expected one of {}", names.join(", ")))
        })
    }
}

/// Default signal-to-noise ratio of the Langevin corrector (Song et al. 2021, appendix G: 0.16
/// for VE on CIFAR-10, the value score_sde uses by default).
pub const DEFAULT_SNR: f64 = 0.16;
/// Annealed Langevin's step at the last noise level, as a fraction of σ_L²: Song & Ermon 2019
/// (§4.3) take ε = 2·10⁻⁵ at σ_L = 0.01, i.e. 0.2·σ_L². The default ε is this fraction of the
/// model's own σ_L², so that every level's step α_i = ε σ_i²/σ_L² stays 0.2 σ_i² — small
/// against the data's scale at that level — whatever σ_min the model was trained with (a
/// fixed 2·10⁻⁵ is 5 σ_L² at EDM's σ_min = 0.002, and Langevin overshoots at every level).
pub const DEFAULT_ALD_STEP_FRACTION: f64 = 0.2;
/// Default Langevin steps per noise level of annealed Langevin dynamics (Song & Ermon 2019: T=100).
pub const DEFAULT_ALD_STEPS_PER_LEVEL: usize = 100;
/// Default tolerances of the RK45 solver (score_sde `sampling.rtol/atol` = 1e-5).
pub const DEFAULT_ODE_TOL: f64 = 1e-5;

/// Limits on options, so that a typo cannot ask for a day of computation.
pub const MAX_STEPS: usize = 100_000;
pub const MAX_CORRECTOR_STEPS: usize = 1_000;
/// The largest Langevin snr r (Song et al. 2021 use 0.01–0.17; 10 already overshoots every level).
pub const MAX_SNR: f64 = 10.0;
/// The largest S_churn of `edm-heun` (Karras et al. 2022 tune it in 0–100; at 1000 the per-step γ =
/// S_churn/N is at its cap √2 − 1 for every step count up to 2,414).
pub const MAX_CHURN: f64 = 1000.0;
pub const MAX_BATCH: usize = 65_536;
/// At most this many values in one batch (256 MiB of f32), whatever the image size.
pub const MAX_BATCH_VALUES: usize = 1 << 26;
/// The adaptive solver gives up after this many score evaluations.
pub const MAX_ODE_EVALS: usize = 100_000;

/// Options shared by all samplers; fields that a sampler does not use are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleOptions {
    pub sampler: Sampler,
    /// Number of time steps N (predictor steps; noise levels L for annealed Langevin).
    pub steps: usize,
    /// Corrector steps per time step: M for PC (default 1), T for ALD (default 100).
    pub corrector_steps: Option<usize>,
    /// Langevin corrector signal-to-noise ratio r.
    pub snr: f64,
    /// ALD step-size constant ε (α_i = ε σ_i² / σ_L²); `None`: [`DEFAULT_ALD_STEP_FRACTION`] · σ_L².
    pub ald_eps: Option<f64>,
    /// RK45 tolerances.
    pub rtol: f64,
    pub atol: f64,
    /// ρ of the Karras noise-level grid (`edm-heun`, `dpmpp-2m`).
    pub rho: f64,
    /// `consistency`: the noise levels σ̂ its second, third, … evaluations re-noise to, from high
    /// to low (a run of N steps takes the first N − 1, after σ̂_max); empty: the Karras grid of ρ
    /// ([`consistency::sigmas`]). A model's measured levels are in its card
    /// ([`defaults::SamplingDefaults::levels_for`]).
    pub levels: Vec<f64>,
    /// S_churn of `edm-heun` (0: deterministic).
    pub churn: f64,
    /// The noise levels where `edm-heun` churns, [S_tmin, S_tmax], and its noise inflation
    /// S_noise ([`karras::Churn`]).
    pub s_tmin: f64,
    pub s_tmax: f64,
    pub s_noise: f64,
    /// Final Tweedie denoising step E[x₀|x_ε] = (x + σ² s(x, ε)) / m(ε) (Efron 2011; Song et al.
    /// 2021 appendix G "denoising").
    pub denoise: bool,
    pub seed: u64,
    /// The index of the batch's first sample in the seed's sequence of samples ([`Noise::per_sample`]):
    /// sample i of a seed is the same whether it is drawn in one batch or in parts (a batch split
    /// across workers passes each part its first index), for the samplers whose
    /// [`catalog::About::per_sample`] is true.
    pub first_sample: u64,
}

/// The seed of a run that names none.
pub const DEFAULT_SEED: u64 = 1;

/// The default run of a model nobody has measured ([`defaults::SamplingDefaults::default`]); a
/// model's own is [`SampleOptions::for_model`] of its card's `sampling`.
impl Default for SampleOptions {
    fn default() -> Self {
        Self::for_model(&defaults::SamplingDefaults::default())
    }
}

impl SampleOptions {
    /// The run a model starts with: its default sampler at that sampler's default steps on it,
    /// every other option the library's.
    pub fn for_model(d: &defaults::SamplingDefaults) -> Self {
        let steps = d.steps_for(d.sampler).default;
        Self {
            sampler: d.sampler,
            steps,
            levels: d.levels_for(d.sampler, steps),
            corrector_steps: None,
            snr: DEFAULT_SNR,
            ald_eps: None,
            rtol: DEFAULT_ODE_TOL,
            atol: DEFAULT_ODE_TOL,
            rho: karras::DEFAULT_RHO,
            churn: karras::DEFAULT_CHURN,
            s_tmin: karras::DEFAULT_S_TMIN,
            s_tmax: karras::DEFAULT_S_TMAX,
            s_noise: karras::DEFAULT_S_NOISE,
            denoise: true,
            seed: DEFAULT_SEED,
            first_sample: 0,
        }
    }

    /// `levels`: only for `consistency`, enough for the steps, each inside the SDE's noise levels
    /// (σ̂_min, σ̂_max) and below the one before.
    fn validate_levels(&self, sde: &Sde) -> Result<(), SampleError> {
        if self.levels.is_empty() {
            return Ok(());
        }
        if self.sampler != Sampler::Consistency {
            return Err(SampleError::invalid("levels", format!("are the re-noising levels of `consistency`; `{}` takes its noise levels from `steps` (and `rho`)", self.sampler.name())));
        }
        if self.levels.len() + 1 < self.steps {
            return Err(SampleError::invalid("levels", format!("{} steps re-noise {} times, but {} levels were given", self.steps, self.steps - 1, self.levels.len())));
        }
        let (min, max) = sde.noise_levels();
        match misplaced_level(&self.levels, min, max) {
            Some((i, level)) => Err(SampleError::invalid("levels", format!("level {i} is {level}; each must lie below the one before (σ̂_max = {max} before the first) and above σ̂_min = {min}"))),
            None => Ok(()),
        }
    }

    /// The churn of `edm-heun` these options ask for.
    pub fn churn(&self) -> karras::Churn {
        karras::Churn { s_churn: self.churn, s_tmin: self.s_tmin, s_tmax: self.s_tmax, s_noise: self.s_noise }
    }

    /// Checks every option against the sampler and the SDE, naming the first bad field.
    pub fn validate(&self, sde: &Sde) -> Result<(), SampleError> {
        let min_steps = if self.sampler == Sampler::AnnealedLangevin { 2 } else { 1 };
        if self.sampler != Sampler::OdeRk45 && !(min_steps..=MAX_STEPS).contains(&self.steps) {
            return Err(SampleError::invalid("steps", format!("must be in {min_steps}..={MAX_STEPS}, got {}", self.steps)));
        }
        if let Some(m) = self.corrector_steps {
            if !(1..=MAX_CORRECTOR_STEPS).contains(&m) {
                return Err(SampleError::invalid("corrector_steps", format!("must be in 1..={MAX_CORRECTOR_STEPS}, got {m}")));
            }
        }
        if !(self.snr.is_finite() && self.snr > 0.0 && self.snr <= MAX_SNR) {
            return Err(SampleError::invalid("snr", format!("must be in (0, {MAX_SNR}], got {}", self.snr)));
        }
        if let Some(eps) = self.ald_eps {
            if !(eps.is_finite() && eps > 0.0 && eps <= 1.0) {
                return Err(SampleError::invalid("ald_eps", format!("must be in (0, 1], got {eps}")));
            }
        }
        validate_tolerances(self.rtol, self.atol)?;
        if !(self.rho.is_finite() && (1.0..=100.0).contains(&self.rho)) {
            return Err(SampleError::invalid("rho", format!("must be in [1, 100], got {}", self.rho)));
        }
        self.validate_levels(sde)?;
        if !(self.churn.is_finite() && (0.0..=MAX_CHURN).contains(&self.churn)) {
            return Err(SampleError::invalid("churn", format!("must be in [0, {MAX_CHURN}], got {}", self.churn)));
        }
        if !(self.s_tmin.is_finite() && self.s_tmin >= 0.0) {
            return Err(SampleError::invalid("s_tmin", format!("must be a noise level ≥ 0, got {}", self.s_tmin)));
        }
        if !(self.s_tmax.is_finite() && self.s_tmax >= self.s_tmin) {
            return Err(SampleError::invalid("s_tmax", format!("must be a noise level ≥ s_tmin ({}), got {}", self.s_tmin, self.s_tmax)));
        }
        if !(self.s_noise.is_finite() && (0.5..=2.0).contains(&self.s_noise)) {
            return Err(SampleError::invalid("s_noise", format!("must be in [0.5, 2], got {}", self.s_noise)));
        }
        if !self.sampler.runs_on(sde) {
            return Err(SampleError::invalid(
                "sampler",
                format!("`ald` (annealed Langevin) needs a VE model (noise-conditional score); this model's SDE is {}", sde.name()),
            ));
        }
        Ok(())
    }
}

/// Samples and how many score evaluations they cost.
pub struct Samples {
    /// [B, C, H, W], in the model's data space.
    pub x: Tensor<4>,
    pub evals: usize,
}

/// The first of a list of noise levels, high to low, that is not a finite level inside (min, max)
/// below the one before it, with its index: what a consistency run's levels are checked against,
/// in its options and in a model card.
pub(crate) fn misplaced_level(levels: &[f64], min: f64, max: f64) -> Option<(usize, f64)> {
    let mut above = max;
    for (i, &level) in levels.iter().enumerate() {
        if !(level.is_finite() && level > min && level < above) {
            return Some((i, level));
        }
        above = level;
    }
    None
}

/// Checks a noise-level interval (min, max] over which a guidance acts, naming its two fields:
/// max a positive level or ∞, min in [0, max).
pub(crate) fn check_sigma_interval(min: f64, max: f64, min_field: &'static str, max_field: &'static str) -> Result<(), SampleError> {
    if !(max > 0.0) {
        return Err(SampleError::invalid(max_field, format!("must be a positive noise level (or ∞), got {max}")));
    }
    if !(min >= 0.0 && min < max) {
        return Err(SampleError::invalid(min_field, format!("must be a noise level in [0, {max_field}), got {min}")));
    }
    Ok(())
}

/// Whether noise level σ̂ lies in the interval (min, max].
pub(crate) fn in_sigma_interval(sigma_hat: f64, min: f64, max: f64) -> bool {
    sigma_hat > min && sigma_hat <= max
}

/// Checks a batch shape [B, C, H, W]: 1 ≤ B ≤ MAX_BATCH and at most MAX_BATCH_VALUES values.
pub fn validate_batch(shape: [usize; 4]) -> Result<(), SampleError> {
    let batch = shape[0];
    if !(1..=MAX_BATCH).contains(&batch) {
        return Err(SampleError::invalid("batch", format!("must be in 1..={MAX_BATCH}, got {batch}")));
    }
    let values = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).unwrap_or(usize::MAX);
    if values > MAX_BATCH_VALUES {
        let per_image = values / batch;
        return Err(SampleError::invalid("batch", format!("of {batch} images of {per_image} values each is too large; at most {} fit", MAX_BATCH_VALUES / per_image.max(1))));
    }
    Ok(())
}

/// Draws `shape`-shaped samples from the model: prior sample at T, then the chosen sampler down
/// to ε, then (optionally) the denoising step.
pub async fn sample<S: ScoreFn, O: Observer>(
    score: &S,
    sde: &Sde,
    shape: [usize; 4],
    options: &SampleOptions,
    device: &Device,
    observer: &mut O,
) -> Result<Samples, SampleError> {
    options.validate(sde)?;
    validate_batch(shape)?;
    let mut noise = Noise::per_sample(options.seed, options.first_sample);
    let x = prior_sample(sde, shape, device, &mut noise);
    run(score, sde, x, options, None, &mut noise, observer).await
}

/// x(T) ~ p_T = N(0, prior_std² I).
pub fn prior_sample(sde: &Sde, shape: [usize; 4], device: &Device, noise: &mut Noise) -> Tensor<4> {
    noise.normal(shape, sde.prior_std(), device)
}

/// Runs the sampler from the given x(T), optionally constrained to known pixels.
pub(crate) async fn run<S: ScoreFn, O: Observer>(
    score: &S,
    sde: &Sde,
    x: Tensor<4>,
    options: &SampleOptions,
    known: Option<&Known>,
    noise: &mut Noise,
    observer: &mut O,
) -> Result<Samples, SampleError> {
    if options.sampler.is_consistency() {
        return Err(SampleError::invalid("sampler", "`consistency` samples consistency models, and this is a score model: choose one of its samplers"));
    }
    let counted = Counted::new(score);
    let eps = sde.eps();
    if matches!(options.sampler, Sampler::EdmHeun | Sampler::DpmSolver2M) {
        let sigmas = karras::sde_sigmas(sde, options.steps, options.rho);
        let x = match options.sampler {
            Sampler::EdmHeun => karras::edm_heun(&counted, sde, x, &sigmas, &options.churn(), known, noise, observer).await?,
            _ => karras::dpmpp_2m(&counted, sde, x, &sigmas, known, observer).await?,
        };
        // The grid ends at σ = 0, where the known pixels were set to the data already.
        let x = match known {
            Some(known) => known.paste(x),
            None => x,
        };
        return Ok(Samples { x, evals: counted.evals.get() });
    }
    let x = match options.sampler {
        Sampler::OdeRk45 => {
            if known.is_some() {
                return Err(SampleError::invalid("sampler", "inpainting supports every sampler but the adaptive ode-rk45"));
            }
            ode::sample_rk45(&counted, sde, x, options.rtol, options.atol, observer).await?
        }
        sampler => {
            let (predictor, corrector, times) = pc::plan(sampler, sde, options)?;
            pc::run(sampler, &counted, sde, x, &times, predictor, corrector, known, noise, observer).await?
        }
    };
    // Every sampler ends at t = ε (ALD's last noise level is σ(ε)).
    let mut x = if options.denoise { denoise(&counted, sde, x, eps) } else { x };
    if let Some(known) = known {
        x = known.paste(x);
    }
    Ok(Samples { x, evals: counted.evals.get() })
}

/// Tweedie's formula: E[x(0) | x(t)] = (x + σ(t)² s(x, t)) / m(t) for x(t) = m(t)x(0) + σ(t)z.
pub fn denoise<S: ScoreFn>(score: &S, sde: &Sde, x: Tensor<4>, t: f64) -> Tensor<4> {
    let (mean, std) = sde.marginal(t);
    let s = score.score(x.clone(), t);
    (x + s * (std * std)) / mean
}

/// Counts score evaluations (benchmarks and RK45 report them).
pub(crate) struct Counted<'a, S> {
    inner: &'a S,
    pub evals: std::cell::Cell<usize>,
}

impl<'a, S> Counted<'a, S> {
    pub fn new(inner: &'a S) -> Self {
        Self { inner, evals: std::cell::Cell::new(0) }
    }
}

impl<S: ScoreFn> ScoreFn for Counted<'_, S> {
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        self.evals.set(self.evals.get() + 1);
        self.inner.score(x, t)
    }
}

/// The RK45 tolerances a run accepts (sampling and the likelihood): each in [10⁻¹⁰, 1].
pub fn validate_tolerances(rtol: f64, atol: f64) -> Result<(), SampleError> {
    for (field, tol) in [("rtol", rtol), ("atol", atol)] {
        if !(tol.is_finite() && (1e-10..=1.0).contains(&tol)) {
            return Err(SampleError::invalid(field, format!("must be in [1e-10, 1], got {tol}")));
        }
    }
    Ok(())
}

/// Per-sample Euclidean norm ‖x_b‖ of a batch, shaped [B, 1, 1, 1] for broadcasting.
pub(crate) fn per_sample_norm(x: Tensor<4>) -> Tensor<4> {
    x.powi_scalar(2).sum_dims(&[1, 2, 3]).sqrt()
}
