//! What a reader is told about each sampler: its label, its paper, the options it reads, the step
//! count it starts at and the fewest steps that give digits. One table; the wasm API hands it to
//! the page and the widget (`ScoreModel.samplers`), which build their controls from it.
//!
//! The step counts are measurements of the shipped MNIST model (`scorefield evaluate`, 250
//! samples per run, 100 for `ald`; docs/EVALUATION.md, "Step counts the page allows"):
//! `min_steps` is the fewest measured steps whose samples come within 2× the real-data Fréchet
//! floor at that sample count (at the next step count down they are noise, blobs or haze, and
//! `min_steps_why` says which), `default_steps` a measured count at which the sampler is near its
//! best. Other models get the same table (their SDE only removes samplers it cannot run); the
//! wasm API itself is limited only by [`super::MAX_STEPS`].

use serde::Serialize;

use super::{DEFAULT_SNR, Sampler};
use crate::sde::Sde;

/// The setting the page and the widget start with: the fastest one that meets the quality
/// targets of docs/EVALUATION.md.
pub const DEFAULT_SAMPLER: Sampler = Sampler::DpmSolver2M;

/// How many images a run draws, and from which seed, when the caller says nothing (the page's and
/// the widget's starting values, the CLI's defaults), and the limits the page's controls show.
/// One definition; the wasm API hands it to the page and the widget (`ScoreModel.runDefaults()`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDefaults {
    /// Images per run, by what the run is for.
    pub batch: BatchDefaults,
    /// The seed of the first run (the page's first batch is the one the README shows).
    pub seed: u64,
    /// The largest batch the page and the widget offer (a 16 × 16 grid); the wasm API itself
    /// takes up to [`super::MAX_BATCH`], and a device may hold fewer (`ScoreModel.maxBatch`).
    pub max_batch: usize,
    /// The options' limits, as [`super::SampleOptions::validate`] enforces them.
    pub max_steps: usize,
    pub max_corrector_steps: usize,
    pub max_snr: f64,
    pub max_churn: f64,
    /// Classifier guidance (models whose card names a classifier): the scale w a guided run
    /// starts at, the largest the page's slider offers, and the largest the API takes.
    pub guidance: f64,
    pub guidance_slider_max: f64,
    pub max_guidance: f64,
    /// Autoguidance (models whose card names a guide model): the weight runs start at, the
    /// largest the page's slider offers, the largest the API takes.
    pub autoguidance: f64,
    pub autoguidance_slider_max: f64,
    /// Autoguidance acts where σ is above this (and below no upper end) unless a run says otherwise.
    pub autoguidance_min_sigma: f64,
    pub max_autoguidance: f64,
    /// The most model workers (wasm instances, each with its own copy of the model) a CPU run in
    /// the page or a widget is split across; fewer when the browser reports fewer cores
    /// (`navigator.hardwareConcurrency`), or as the page's `?workers=N` and the widget's
    /// `workers` attribute pin. See www/client.js and docs/PERFORMANCE.md ("Workers").
    pub max_workers: usize,
    /// The sampler a guided run starts with: a stochastic one, whose fresh noise lets guidance
    /// correct a class chosen early (docs/EVALUATION.md, "Guided generation": 86 % of the digits
    /// of the requested class with `edm-heun:18:churn=40` against 66 % with `dpmpp-2m:10`).
    pub guided: GuidedDefaults,
}

/// The sampler, steps and churn of a guided run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GuidedDefaults {
    pub sampler: &'static str,
    pub steps: usize,
    pub churn: f64,
}

/// Images per run: a 4 × 4 grid of samples; a 2 × 2 grid of completions of one digit, the
/// widget's (the source beside them stays readable; the page inpaints its Batch field's count);
/// one path drawn through time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BatchDefaults {
    pub generate: usize,
    pub inpaint: usize,
    pub trajectory: usize,
}

pub const RUN_DEFAULTS: RunDefaults = RunDefaults {
    batch: BatchDefaults { generate: 16, inpaint: 4, trajectory: 1 },
    seed: 1,
    max_batch: 256,
    max_steps: super::MAX_STEPS,
    max_corrector_steps: super::MAX_CORRECTOR_STEPS,
    max_snr: super::MAX_SNR,
    max_churn: super::MAX_CHURN,
    guidance: super::guidance::DEFAULT_GUIDANCE,
    guidance_slider_max: GUIDANCE_SLIDER_MAX,
    max_guidance: super::guidance::MAX_GUIDANCE,
    autoguidance: super::autoguidance::DEFAULT_AUTOGUIDANCE,
    autoguidance_slider_max: super::autoguidance::AUTOGUIDANCE_SLIDER_MAX,
    autoguidance_min_sigma: super::autoguidance::DEFAULT_AUTOGUIDANCE_MIN_SIGMA,
    max_autoguidance: super::autoguidance::MAX_AUTOGUIDANCE,
    max_workers: 8,
    guided: GuidedDefaults { sampler: "edm-heun", steps: 18, churn: 40.0 },
};

/// The page's guidance slider ends here: beyond it the measured samples lose their shape
/// (docs/EVALUATION.md, "Guided generation").
pub const GUIDANCE_SLIDER_MAX: f64 = 10.0;

/// One sampler, as the page and the widget describe it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SamplerInfo {
    /// The name the CLI, the wasm API and the widget's `sampler` attribute use.
    pub name: &'static str,
    pub label: &'static str,
    /// Where it comes from.
    pub paper: &'static str,
    /// What one step costs, for the step control's hint.
    pub step: &'static str,
    /// The wasm API options it reads besides `steps`, `batch` and `seed`.
    pub options: &'static [&'static str],
    /// Whether `steps` means anything (the adaptive RK45 picks its own steps).
    pub takes_steps: bool,
    pub default_steps: usize,
    /// The fewest steps the page and the widget allow, and why.
    pub min_steps: usize,
    pub min_steps_why: &'static str,
    /// Corrector steps the page starts with (M for `pc`, T per level for `ald`), if it has any.
    pub default_corrector_steps: Option<usize>,
    pub default_snr: Option<f64>,
    /// S_churn the page starts with, for the samplers that read it.
    pub default_churn: Option<f64>,
    /// Whether each sample's path depends on its own noise alone ([`super::Noise::per_sample`]), so
    /// that a batch split into parts (`first_sample`) gives the same samples: false for the
    /// samplers whose steps read the whole batch — the Langevin corrector of `pc` (step size
    /// from batch-averaged norms, as in score_sde) and `ode-rk45` (one adaptive step size for
    /// the batch). The worker pool runs those whole, in one worker.
    pub per_sample: bool,
}

impl Sampler {
    /// How the page and the widget describe this sampler.
    pub fn info(self) -> SamplerInfo {
        let base = SamplerInfo {
            name: self.name(),
            label: "",
            paper: "",
            step: "one score evaluation",
            options: &[],
            takes_steps: true,
            default_steps: 0,
            min_steps: 1,
            min_steps_why: "",
            default_corrector_steps: None,
            default_snr: None,
            default_churn: None,
            per_sample: true,
        };
        match self {
            Sampler::EulerMaruyama => SamplerInfo {
                label: "Euler–Maruyama (reverse SDE)",
                paper: "Song et al. 2021, eq. 6",
                default_steps: 100,
                min_steps: 50,
                min_steps_why: "at 20 steps its first-order steps leave speckled, malformed strokes",
                ..base
            },
            Sampler::ReverseDiffusion => SamplerInfo {
                label: "Reverse diffusion",
                paper: "Song et al. 2021, eq. 47",
                default_steps: 100,
                min_steps: 50,
                min_steps_why: "at 20 steps its coarse steps leave speckled, malformed strokes",
                ..base
            },
            Sampler::PredictorCorrector => SamplerInfo {
                label: "Predictor–corrector (reverse diffusion + Langevin)",
                paper: "Song et al. 2021, alg. 1–5",
                step: "1 + corrector steps score evaluations",
                options: &["correctorSteps", "snr"],
                default_steps: 100,
                min_steps: 50,
                min_steps_why: "at 25 steps a third of its digits are malformed, at 10 most are noise",
                default_corrector_steps: Some(1),
                default_snr: Some(DEFAULT_SNR),
                per_sample: false,
                ..base
            },
            Sampler::AnnealedLangevin => SamplerInfo {
                label: "Annealed Langevin dynamics",
                paper: "Song & Ermon 2019, alg. 1",
                step: "one noise level: corrector-steps score evaluations",
                options: &["correctorSteps", "aldEps"],
                default_steps: 100,
                min_steps: 50,
                min_steps_why: "with 5 Langevin steps per level, 20 levels do not leave the initial noise",
                default_corrector_steps: Some(5),
                ..base
            },
            Sampler::OdeEuler => SamplerInfo {
                label: "Probability-flow ODE (Euler)",
                paper: "Song et al. 2021, eq. 13",
                default_steps: 100,
                min_steps: 100,
                min_steps_why: "at 50 steps Euler's first-order error blurs the digits into a few smooth shapes",
                ..base
            },
            Sampler::OdeHeun => SamplerInfo {
                label: "Probability-flow ODE (Heun)",
                paper: "Karras et al. 2022, alg. 1",
                step: "two score evaluations",
                default_steps: 50,
                min_steps: 25,
                min_steps_why: "on the SDE's uniform time grid, 10 steps end in noise: the steps at small σ are too coarse",
                ..base
            },
            Sampler::OdeRk45 => SamplerInfo {
                label: "Probability-flow ODE (adaptive RK45)",
                paper: "Dormand & Prince 1980; Song et al. 2021, §4.3",
                step: "picks its own steps (tolerance 10⁻⁵)",
                options: &["rtol", "atol"],
                takes_steps: false,
                default_steps: 1,
                min_steps: 1,
                min_steps_why: "the step count is chosen by the solver",
                per_sample: false,
                ..base
            },
            Sampler::EdmHeun => SamplerInfo {
                label: "Heun on the EDM σ grid (Karras et al. 2022)",
                paper: "Karras et al. 2022, alg. 2",
                step: "two score evaluations (the last step one)",
                options: &["rho", "churn"],
                default_churn: Some(super::karras::DEFAULT_CHURN),
                default_steps: 18,
                min_steps: 5,
                min_steps_why: "at 3 steps the σ grid is too coarse: faint, broken digits",
                ..base
            },
            Sampler::DpmSolver2M => SamplerInfo {
                label: "DPM-Solver++(2M) (Lu et al. 2022)",
                paper: "Lu et al. 2022, alg. 2",
                options: &["rho"],
                // With the default autoguidance: 26 network evaluations, 90.3 % confident at 2.02 ×
                // the Fréchet floor over four seeds with the shipped weights
                // (docs/EVALUATION.md, "What holds now"), 2.3 points above the ≤ 35-evaluation
                // target; 13 steps (20 evaluations) give 89.7 % on seed 0, about one run's spread
                // above it.
                default_steps: 17,
                min_steps: 5,
                min_steps_why: "at 3 steps the digits are blurred into a grey haze",
                ..base
            },
        }
    }

    /// Whether this sampler runs on a model with this SDE (annealed Langevin needs VE).
    pub fn runs_on(self, sde: &Sde) -> bool {
        self != Sampler::AnnealedLangevin || matches!(sde, Sde::Ve { .. })
    }
}

/// The samplers a model with this SDE offers, in the order of [`Sampler::ALL`] (default first).
pub fn samplers_for(sde: &Sde) -> Vec<SamplerInfo> {
    Sampler::ALL.into_iter().filter(|s| s.runs_on(sde)).map(Sampler::info).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sampler is described, under its own name, with a label, a paper, and a default
    /// step count within the limits it states.
    #[test]
    fn every_sampler_is_described_consistently() {
        for sampler in Sampler::ALL {
            let info = sampler.info();
            assert_eq!(info.name, sampler.name());
            assert!(!info.label.is_empty() && !info.paper.is_empty() && !info.min_steps_why.is_empty(), "{}", info.name);
            assert!((info.min_steps..=super::super::MAX_STEPS).contains(&info.default_steps), "{}", info.name);
            assert_eq!(info.default_corrector_steps.is_some(), info.options.contains(&"correctorSteps"), "{}", info.name);
            assert_eq!(info.default_snr.is_some(), info.options.contains(&"snr"), "{}", info.name);
            assert_eq!(info.default_churn.is_some(), info.options.contains(&"churn"), "{}", info.name);
        }
        assert_eq!(samplers_for(&Sde::ve(40.0))[0].name, DEFAULT_SAMPLER.name(), "the default comes first");
        assert_eq!(samplers_for(&Sde::ve(40.0)).len(), Sampler::ALL.len());
        assert!(samplers_for(&Sde::vp()).iter().all(|s| s.name != "ald"));
    }

    /// The starting batches fit the page's limit, which fits the API's.
    #[test]
    fn run_defaults_are_within_the_limits() {
        let d = RUN_DEFAULTS;
        for batch in [d.batch.generate, d.batch.inpaint, d.batch.trajectory] {
            assert!((1..=d.max_batch).contains(&batch));
        }
        assert!(d.max_batch <= super::super::MAX_BATCH);
        assert!(0.0 < d.guidance && d.guidance <= d.guidance_slider_max && d.guidance_slider_max <= d.max_guidance);
        let guided: Sampler = d.guided.sampler.parse().unwrap();
        let options = super::super::SampleOptions { sampler: guided, steps: d.guided.steps, churn: d.guided.churn, ..Default::default() };
        options.validate(&Sde::ve(40.0)).unwrap();
        assert!(d.guided.steps >= guided.info().min_steps);
    }
}
