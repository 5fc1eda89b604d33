//! `scorefield sample`: samples as a PNG grid (and .npy), with any sampler; the sampler options
//! `inpaint` and `evaluate` share, their defaults `SampleOptions::default()`'s.

use anyhow::anyhow;
use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use clap::Args;
use scorefield::io::{self, Batch};
use scorefield::nn::classifier::NoisyClassifier;
use scorefield::compose::RunScore;
use scorefield::sampling::autoguidance::{self, Autoguidance};
use scorefield::sampling::guidance::{self, Guidance};
use scorefield::sampling::{self, Flow, SampleOptions, Sampler, Step};
use scorefield::ScoreModel;
use scorefield::store::{ModelCard, files};

use super::{DeviceArg, device, load};

#[derive(Args)]
pub(crate) struct SamplerArgs {
    /// Model card (NAME.json).
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// em | rd | pc | ald | ode-euler | ode-heun | ode-rk45 | edm-heun | dpmpp-2m (default: the
    /// model card's `sampling.sampler`).
    #[arg(long)]
    pub(crate) sampler: Option<String>,
    /// Time steps N (noise levels for ald; default: the sampler's on this model, from its card).
    #[arg(long)]
    pub(crate) steps: Option<usize>,
    /// Corrector steps per time step (pc: default 1; ald: default 100).
    #[arg(long)]
    pub(crate) corrector_steps: Option<usize>,
    /// Langevin corrector signal-to-noise ratio.
    #[arg(long, default_value_t = sampling::DEFAULT_SNR)]
    pub(crate) snr: f64,
    /// Step-size constant ε of annealed Langevin (default: 0.2 σ_min², Song & Ermon 2019's ratio).
    #[arg(long)]
    pub(crate) ald_eps: Option<f64>,
    /// RK45 relative tolerance.
    #[arg(long, default_value_t = sampling::DEFAULT_ODE_TOL)]
    pub(crate) rtol: f64,
    /// RK45 absolute tolerance.
    #[arg(long, default_value_t = sampling::DEFAULT_ODE_TOL)]
    pub(crate) atol: f64,
    /// ρ of the Karras noise-level grid (edm-heun, dpmpp-2m).
    #[arg(long, default_value_t = sampling::karras::DEFAULT_RHO)]
    pub(crate) rho: f64,
    /// consistency: the noise levels its later steps re-noise to, high to low, comma-separated
    /// (default: the model card's `sampling.consistency_levels` where it has enough, else the
    /// Karras grid of --rho).
    #[arg(long, value_delimiter = ',')]
    pub(crate) levels: Option<Vec<f64>>,
    /// S_churn of edm-heun (0: deterministic).
    #[arg(long, default_value_t = sampling::karras::DEFAULT_CHURN)]
    pub(crate) churn: f64,
    /// Lowest noise level where edm-heun churns (S_tmin).
    #[arg(long, default_value_t = sampling::karras::DEFAULT_S_TMIN)]
    pub(crate) s_tmin: f64,
    /// Highest noise level where edm-heun churns (S_tmax).
    #[arg(long, default_value_t = sampling::karras::DEFAULT_S_TMAX)]
    pub(crate) s_tmax: f64,
    /// Inflation of edm-heun's churn noise (S_noise).
    #[arg(long, default_value_t = sampling::karras::DEFAULT_S_NOISE)]
    pub(crate) s_noise: f64,
    /// Skip the final Tweedie denoising step.
    #[arg(long)]
    pub(crate) no_denoise: bool,
    /// The run's seed.
    #[arg(long, default_value_t = SampleOptions::default().seed)]
    pub(crate) seed: u64,
    /// Index of the first image in the seed's sequence: `--first-sample 3 --n 1` draws image 3
    /// of `--n 4` (for the samplers whose images do not depend on their batch; see `pc` and
    /// `ode-rk45` in the catalog).
    #[arg(long, default_value_t = 0)]
    pub(crate) first_sample: u64,
    /// Draw digits of this class (0–9 for the digits), or `all` for every class in turn, by
    /// classifier guidance.
    #[arg(long)]
    pub(crate) class: Option<String>,
    /// Guidance scale w of --class (1: Bayes' rule exactly; more: more clearly of the class;
    /// default: the model card's `sampling.guided.scale`).
    #[arg(long)]
    pub(crate) guidance: Option<f64>,
    /// Guidance acts only at noise levels above this σ (Kynkäänniemi et al. 2024; default: the
    /// model card's `sampling.guided.min_sigma`).
    #[arg(long)]
    pub(crate) guidance_min_sigma: Option<f64>,
    /// Guidance acts only at noise levels up to this σ (inf: at all).
    #[arg(long, default_value_t = guidance::DEFAULT_GUIDANCE_MAX_SIGMA)]
    pub(crate) guidance_max_sigma: f64,
    /// The classifier card of --class (default: the one the model card names).
    #[arg(long)]
    pub(crate) classifier: Option<PathBuf>,
    /// Autoguidance weight w: the score of the model extrapolated away from a worse model's,
    /// s_bad + w·(s − s_bad) (Karras et al. 2024); 1: the model alone. Default: the card's
    /// `sampling.autoguidance.weight` when it names a guide model (`guide`), else 1.
    #[arg(long)]
    pub(crate) autoguidance: Option<f64>,
    /// The worse model of autoguidance (default: the one the model card names).
    #[arg(long)]
    pub(crate) guide_model: Option<PathBuf>,
    /// Autoguidance acts only at noise levels above this σ (default: the model card's
    /// `sampling.autoguidance.min_sigma`).
    #[arg(long)]
    pub(crate) autoguidance_min_sigma: Option<f64>,
    /// Autoguidance acts only at noise levels up to this σ (inf: at all).
    #[arg(long, default_value_t = autoguidance::DEFAULT_AUTOGUIDANCE_MAX_SIGMA)]
    pub(crate) autoguidance_max_sigma: f64,
    #[command(flatten)]
    pub(crate) device: DeviceArg,
}

/// The classifier card for guided runs: `--classifier`, else the one the model card names.
pub(crate) fn classifier_path(model: &std::path::Path, card: &ModelCard, flag: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    match (flag, &card.classifier) {
        (Some(path), _) => Ok(path.to_path_buf()),
        (None, Some(name)) => Ok(files::beside(model, name)),
        (None, None) => Err(anyhow!("{}: the model card names no classifier (`classifier`); pass --classifier or train one with `scorefield train-classifier`", model.display())),
    }
}

/// The classifier of guided runs: `--classifier`, else the one the model card names, checked
/// against the model's images.
pub(crate) fn load_classifier(model: &std::path::Path, card: &ModelCard, flag: Option<&std::path::Path>, device: &burn::prelude::Device) -> anyhow::Result<NoisyClassifier> {
    let path = classifier_path(model, card, flag)?;
    let (classifier_card, classifier) = scorefield::store::classifier::files::load(&path, device).map_err(|e| anyhow!("the classifier: {e}"))?;
    classifier_card.check_for(card).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(classifier)
}

/// The worse model of autoguidance for the model at `model` (its path, loaded model and
/// guidance), or `None` for the model alone: `guide_model`, else the one the card names (`guide`),
/// at `weight` (default: the card's `sampling.autoguidance.weight` when there is a guide, else 1)
/// where σ is in (`min_sigma` (default the card's), `max_sigma`]; its card checked against the
/// model's.
pub(crate) fn worse_model(model: &std::path::Path, card: &ModelCard, guide_model: Option<&std::path::Path>, weight: Option<f64>, min_sigma: Option<f64>, max_sigma: f64, device: &burn::prelude::Device) -> anyhow::Result<Option<(PathBuf, ScoreModel, Autoguidance)>> {
    let path = match (guide_model, &card.guide) {
        (Some(path), _) => Some(path.to_path_buf()),
        (None, Some(name)) => Some(files::beside(model, name)),
        (None, None) => None,
    };
    let d = &card.sampling.autoguidance;
    let weight = weight.unwrap_or(if path.is_some() { d.weight } else { 1.0 });
    let guidance = Autoguidance::with_interval(weight, Some(min_sigma.unwrap_or(d.min_sigma)), Some(max_sigma))?;
    if weight == 1.0 {
        return Ok(None);
    }
    let path = path.ok_or_else(|| anyhow!("{}: `--autoguidance` needs a worse model: the card names no `guide`; pass --guide-model", model.display()))?;
    let (guide_card, guide) = load(&path, device).map_err(|e| anyhow!("the guide model: {e}"))?;
    card.check_guide(&guide_card).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(Some((path, guide, guidance)))
}

impl SamplerArgs {
    /// The classifier and guidance that --class asks for, or `None`.
    pub(crate) fn guide(&self, card: &ModelCard, device: &burn::prelude::Device) -> anyhow::Result<Option<(NoisyClassifier, Guidance)>> {
        let Some(class) = &self.class else { return Ok(None) };
        let classifier = load_classifier(&self.model, card, self.classifier.as_deref(), device)?;
        let classes = if class == "all" { (0..classifier.classes()).collect() } else { vec![class.parse::<usize>().map_err(|_| anyhow!("`--class` must be a class number or `all`, got `{class}`"))?] };
        let d = &card.sampling.guided;
        let scale = self.guidance.unwrap_or(d.scale);
        let guidance = Guidance { min_sigma: self.guidance_min_sigma.unwrap_or(d.min_sigma), max_sigma: self.guidance_max_sigma, ..Guidance::new(classes, scale).from_sample(self.first_sample) };
        guidance.validate(classifier.classes())?;
        Ok(Some((classifier, guidance)))
    }

    /// The worse model and weight of autoguidance, or `None` for the model alone: `--guide-model`,
    /// else the card's `guide`, at `--autoguidance` (default the card's `sampling.autoguidance.weight` with a guide).
    pub(crate) fn worse(&self, card: &ModelCard, device: &burn::prelude::Device) -> anyhow::Result<Option<(ScoreModel, Autoguidance)>> {
        let worse = worse_model(&self.model, card, self.guide_model.as_deref(), self.autoguidance, self.autoguidance_min_sigma, self.autoguidance_max_sigma, device)?;
        Ok(worse.map(|(_, guide, guidance)| (guide, guidance)))
    }

    /// The run these flags ask for on the model of `card`: its default sampler and steps where
    /// the flags name none.
    pub(crate) fn options(&self, card: &ModelCard) -> anyhow::Result<SampleOptions> {
        let sampler = match &self.sampler {
            Some(name) => name.parse::<Sampler>()?,
            None => card.sampling.sampler,
        };
        let steps = self.steps.unwrap_or(card.sampling.steps_for(sampler).default);
        Ok(SampleOptions {
            sampler,
            steps,
            levels: self.levels.clone().unwrap_or_else(|| card.sampling.levels_for(sampler, steps)),
            corrector_steps: self.corrector_steps,
            snr: self.snr,
            ald_eps: self.ald_eps,
            rtol: self.rtol,
            atol: self.atol,
            rho: self.rho,
            churn: self.churn,
            s_tmin: self.s_tmin,
            s_tmax: self.s_tmax,
            s_noise: self.s_noise,
            denoise: !self.no_denoise,
            seed: self.seed,
            first_sample: self.first_sample,
        })
    }
}

#[derive(Args)]
pub(crate) struct SampleArgs {
    #[command(flatten)]
    sampler: SamplerArgs,
    /// Number of samples (default: the page's first batch).
    #[arg(long, default_value_t = scorefield::frontend::BATCH.generate)]
    n: usize,
    #[command(flatten)]
    output: OutputArgs,
}

/// Where `sample` and `inpaint` write their images.
#[derive(Args)]
pub(crate) struct OutputArgs {
    /// PNG grid to write.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Also write the images as float32 [N, C, H, W] in the card's value range.
    #[arg(long)]
    pub(crate) npy: Option<PathBuf>,
    /// Pixel upscaling of the grid.
    #[arg(long, default_value_t = 4)]
    pub(crate) scale: usize,
}

/// Prints progress to stderr about twenty times per run, and stops a run that has blown up (the
/// sum of x, one number read back, is NaN or ±∞ as soon as one value is).
pub(crate) fn progress(label: &'static str) -> impl FnMut(&Step<'_>) -> Flow {
    let start = Instant::now();
    let mut last = -1.0;
    move |s: &Step<'_>| {
        if s.progress - last >= 0.05 || s.progress >= 1.0 {
            if !s.x.clone().sum().into_scalar::<f32>().is_finite() {
                return Flow::NonFinite;
            }
            last = s.progress;
            let total = s.total.map(|t| format!("/{t}")).unwrap_or_default();
            eprint!("\r{label}: step {}{total}  t = {:.4}  {:.0}%  {:.1}s   ", s.step, s.t, s.progress * 100.0, start.elapsed().as_secs_f64());
        }
        Flow::Continue
    }
}

pub(crate) async fn read_tensor(x: Tensor<4>) -> anyhow::Result<Batch> {
    let shape = x.dims();
    let data = x.into_data_async().await.map_err(|e| anyhow!("{e:?}"))?.try_to_vec::<f32>().map_err(|e| anyhow!("{e:?}"))?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(anyhow!("the samples contain a non-finite value (sample {}); try more steps", i / (shape[1] * shape[2] * shape[3])));
    }
    Ok(Batch { shape, data })
}

pub(crate) fn write_outputs(batch: &Batch, card: &ModelCard, output: &OutputArgs) -> anyhow::Result<()> {
    io::write_grid_png(&output.out, batch, card.image.range, output.scale.clamp(1, 32))?;
    println!("wrote {}", output.out.display());
    if let Some(npy) = &output.npy {
        io::write_npy(npy, batch)?;
        println!("wrote {}", npy.display());
    }
    Ok(())
}

pub(crate) fn run(a: SampleArgs) -> anyhow::Result<()> {
    let device = device(a.sampler.device.device)?;
    let (card, model) = load(&a.sampler.model, &device)?;
    let options = a.sampler.options(&card)?;
    let guide = a.sampler.guide(&card, &device)?;
    let worse = a.sampler.worse(&card, &device)?;
    let score = RunScore::new(&model, worse.as_ref().map(|(bad, g)| (bad, *g)), guide.as_ref().map(|(c, g)| (c, g.clone())))?;
    let [c, h, w] = card.image_shape();
    let start = Instant::now();
    let mut observer = progress("sampling");
    let out = pollster::block_on(score.sample([a.n, c, h, w], &options, &device, &mut observer))?;
    let batch = pollster::block_on(read_tensor(out.x))?;
    eprintln!();
    let autoguided = worse.as_ref().map(|(_, g)| format!(", autoguidance w = {}: {} of them by the guide model", g.weight, score.guide_evals())).unwrap_or_default();
    println!("{} samples with {} in {:.2}s ({} network evaluations{autoguided})", a.n, options.sampler.name(), start.elapsed().as_secs_f64(), out.evals + score.guide_evals());
    write_outputs(&batch, &card, &a.output)
}
