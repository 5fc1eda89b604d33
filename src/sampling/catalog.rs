//! What a reader is told about each sampler: its label, its paper, what a step costs, the options
//! it reads. One table, the same for every model; [`samplers_for`] adds a model's own step counts
//! (its card's `sampling`, [`super::defaults`]) and hands the page and the widget the result
//! (`ScoreModel.samplers`), from which they build their controls. The wasm API itself is limited
//! only by [`super::MAX_STEPS`].

use serde::Serialize;

use super::defaults::SamplingDefaults;
use super::{DEFAULT_SNR, Sampler};
use crate::precond::Parameterisation;
use crate::sde::Sde;

/// One sampler, as the page and the widget describe it: what it is ([`About`]) and its step
/// counts on one model.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SamplerInfo {
    /// The name the CLI, the wasm API and the widget's `sampler` attribute use.
    pub name: &'static str,
    #[serde(flatten)]
    pub about: About,
    /// On this model: the steps a run starts at, the fewest the page and the widget allow, and
    /// why ([`SamplingDefaults::steps_for`]).
    pub default_steps: usize,
    pub min_steps: usize,
    pub min_steps_why: String,
}

/// What a sampler is, whatever the model.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct About {
    pub label: &'static str,
    /// Where it comes from.
    pub paper: &'static str,
    /// What one step costs, for the step control's hint.
    pub step: &'static str,
    /// The wasm API options it reads besides `steps`, `batch` and `seed`.
    pub options: &'static [&'static str],
    /// Whether `steps` means anything (the adaptive RK45 picks its own steps).
    pub takes_steps: bool,
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
    /// How the page and the widget describe this sampler, with its step counts on `model`.
    pub fn info(self, model: &SamplingDefaults) -> SamplerInfo {
        let steps = model.steps_for(self);
        SamplerInfo { name: self.name(), about: self.about(), default_steps: steps.default, min_steps: steps.min, min_steps_why: steps.why }
    }

    /// What this sampler is, whatever the model.
    pub fn about(self) -> About {
        let base = About {
            label: "",
            paper: "",
            step: "one score evaluation",
            options: &[],
            takes_steps: true,
            default_corrector_steps: None,
            default_snr: None,
            default_churn: None,
            per_sample: true,
        };
        match self {
            Sampler::EulerMaruyama => About {
                label: "Euler–Maruyama (reverse SDE)",
                paper: "Song et al. 2021, eq. 6",
                ..base
            },
            Sampler::ReverseDiffusion => About {
                label: "Reverse diffusion",
                paper: "Song et al. 2021, eq. 47",
                ..base
            },
            Sampler::PredictorCorrector => About {
                label: "Predictor–corrector (reverse diffusion + Langevin)",
                paper: "Song et al. 2021, alg. 1–5",
                step: "1 + corrector steps score evaluations",
                options: &["correctorSteps", "snr"],
                default_corrector_steps: Some(1),
                default_snr: Some(DEFAULT_SNR),
                per_sample: false,
                ..base
            },
            Sampler::AnnealedLangevin => About {
                label: "Annealed Langevin dynamics",
                paper: "Song & Ermon 2019, alg. 1",
                step: "one noise level: corrector-steps score evaluations",
                options: &["correctorSteps", "aldEps"],
                default_corrector_steps: Some(5),
                ..base
            },
            Sampler::OdeEuler => About {
                label: "Probability-flow ODE (Euler)",
                paper: "Song et al. 2021, eq. 13",
                ..base
            },
            Sampler::OdeHeun => About {
                label: "Probability-flow ODE (Heun)",
                paper: "Karras et al. 2022, alg. 1",
                step: "two score evaluations",
                ..base
            },
            Sampler::OdeRk45 => About {
                label: "Probability-flow ODE (adaptive RK45)",
                paper: "Dormand & Prince 1980; Song et al. 2021, §4.3",
                step: "picks its own steps (tolerance 10⁻⁵)",
                options: &["rtol", "atol"],
                takes_steps: false,
                per_sample: false,
                ..base
            },
            Sampler::EdmHeun => About {
                label: "Heun on the EDM σ grid (Karras et al. 2022)",
                paper: "Karras et al. 2022, alg. 2",
                step: "two score evaluations (the last step one)",
                options: &["rho", "churn"],
                default_churn: Some(super::karras::DEFAULT_CHURN),
                ..base
            },
            Sampler::DpmSolver2M => About {
                label: "DPM-Solver++(2M) (Lu et al. 2022)",
                paper: "Lu et al. 2022, alg. 2",
                options: &["rho"],
                ..base
            },
            Sampler::Consistency => About {
                label: "Consistency model (Song et al. 2023)",
                paper: "Song et al. 2023, alg. 1 (inpainting: alg. 4)",
                step: "one network evaluation, re-noised in between",
                options: &["levels", "rho"],
                ..base
            },
        }
    }

    /// Whether this sampler runs on a model with this SDE (annealed Langevin needs VE).
    pub fn runs_on(self, sde: &Sde) -> bool {
        self != Sampler::AnnealedLangevin || matches!(sde, Sde::Ve { .. })
    }
}

/// The samplers a model with this SDE and parameterisation offers, with its step counts: a score
/// model's default first, then the rest in the order of [`Sampler::ALL`]; a consistency model's
/// one sampler.
pub fn samplers_for(sde: &Sde, param: &Parameterisation, model: &SamplingDefaults) -> Vec<SamplerInfo> {
    if param.is_consistency() {
        return vec![Sampler::Consistency.info(model)];
    }
    let first = std::iter::once(model.sampler).filter(|s| s.runs_on(sde));
    let rest = Sampler::ALL.into_iter().filter(|s| s.runs_on(sde) && *s != model.sampler);
    first.chain(rest).map(|s| s.info(model)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::defaults::StepCounts;

    const EDM: Parameterisation = Parameterisation::Edm { sigma_data: 0.5 };

    /// Every sampler is described, under its own name, with a label, a paper, and a default
    /// step count within the limits it states.
    #[test]
    fn every_sampler_is_described_consistently() {
        let model = SamplingDefaults::default();
        for sampler in Sampler::ALL {
            let info = sampler.info(&model);
            assert_eq!(info.name, sampler.name());
            assert!(!info.about.label.is_empty() && !info.about.paper.is_empty() && !info.min_steps_why.is_empty(), "{}", info.name);
            assert!((info.min_steps..=super::super::MAX_STEPS).contains(&info.default_steps), "{}", info.name);
            let about = &info.about;
            assert_eq!(about.default_corrector_steps.is_some(), about.options.contains(&"correctorSteps"), "{}", info.name);
            assert_eq!(about.default_snr.is_some(), about.options.contains(&"snr"), "{}", info.name);
            assert_eq!(about.default_churn.is_some(), about.options.contains(&"churn"), "{}", info.name);
        }
        assert_eq!(samplers_for(&Sde::ve(40.0), &EDM, &model)[0].name, model.sampler.name(), "the default comes first");
        assert_eq!(samplers_for(&Sde::ve(40.0), &EDM, &model).len(), Sampler::ALL.len());
        assert!(samplers_for(&Sde::vp(), &EDM, &model).iter().all(|s| s.name != "ald"));
    }

    /// A model's own counts and default sampler replace the library's starting points, for that
    /// sampler only.
    #[test]
    fn a_models_step_counts_are_its_own() {
        let mut model = SamplingDefaults { sampler: Sampler::EdmHeun, ..SamplingDefaults::default() };
        model.steps.insert("edm-heun".into(), StepCounts { default: 30, min: 12, why: "at 8 steps the emoji are grey".into() });
        let listed = samplers_for(&Sde::ve(80.0), &EDM, &model);
        assert_eq!(listed[0].name, "edm-heun");
        assert_eq!((listed[0].default_steps, listed[0].min_steps, listed[0].min_steps_why.as_str()), (30, 12, "at 8 steps the emoji are grey"));
        let dpm = listed.iter().find(|s| s.name == "dpmpp-2m").unwrap();
        assert_eq!((dpm.default_steps, dpm.min_steps), (Sampler::DpmSolver2M.starting_steps().default, Sampler::DpmSolver2M.starting_steps().min));
        assert_eq!(listed.len(), Sampler::ALL.len());
    }
}
