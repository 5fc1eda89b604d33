//! How a model is sampled when a run says nothing: its default sampler, each sampler's starting
//! and fewest steps, its guided run, its autoguidance. Measured per model (`scorefield evaluate`)
//! and kept in its card (`sampling`); a model nobody has measured starts from
//! [`SamplingDefaults::default`], the library's starting points (the MNIST model's measurements).
//! The samplers themselves — what each is, its paper, its options — are described in
//! [`super::catalog`], the same for every model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Sampler, autoguidance, guidance};
use crate::error::ConfigError;

/// The steps a sampler starts at on this model, and the fewest the page and the widget allow,
/// with why (what the samples look like one measured step count below).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepCounts {
    pub default: usize,
    pub min: usize,
    pub why: String,
}

/// A guided run (a model whose card names a classifier): its sampler, steps and churn, the
/// guidance scale it starts at and the noise level below which guidance stops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuidedDefaults {
    pub sampler: Sampler,
    pub steps: usize,
    pub churn: f64,
    pub scale: f64,
    pub min_sigma: f64,
}

/// Autoguidance (a model whose card names a guide model): the weight runs start at and the noise
/// level below which it stops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoguidanceDefaults {
    pub weight: f64,
    pub min_sigma: f64,
}

/// A model's sampling settings (the card's `sampling`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingDefaults {
    /// The sampler a run starts with: the fastest that meets the model's quality targets.
    pub sampler: Sampler,
    /// Per sampler, by name. A sampler missing here starts from the library's counts.
    pub steps: BTreeMap<String, StepCounts>,
    pub guided: GuidedDefaults,
    pub autoguidance: AutoguidanceDefaults,
    /// A consistency model's re-noising levels σ̂, high to low, chosen by measurement (greedily,
    /// one level at a time, as Song et al. 2023 chose theirs): a run of N ≤ len + 1 steps takes
    /// the first N − 1 after σ̂_max; longer runs, and a card without them, take the Karras grid
    /// ([`super::consistency::run_levels`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consistency_levels: Vec<f64>,
    /// Where these numbers come from (a measurement and where it is reported), or that they
    /// were not measured on this model.
    pub source: String,
}

impl StepCounts {
    fn new(default: usize, min: usize, why: &str) -> Self {
        Self { default, min, why: why.into() }
    }
}

/// Where the library's starting points come from.
pub const STARTING_POINTS: &str = "not measured on this model: the library's starting points, measured on the MNIST digits model";

impl Sampler {
    /// The steps this sampler starts at on a model nobody has measured, and the fewest allowed,
    /// with why (said of the digits, where it was seen): the MNIST model's measurements (docs/EVALUATION.md, "Step counts the page
    /// allows": the fewest steps within 2× the Fréchet floor, 250 samples per run).
    pub fn starting_steps(self) -> StepCounts {
        match self {
            Sampler::EulerMaruyama => StepCounts::new(100, 50, "on the MNIST digits, 20 steps leave speckled, malformed strokes (first-order steps)"),
            Sampler::ReverseDiffusion => StepCounts::new(100, 50, "on the MNIST digits, 20 coarse steps leave speckled, malformed strokes"),
            Sampler::PredictorCorrector => StepCounts::new(100, 50, "on the MNIST digits, at 25 steps a third are malformed, at 10 most are noise"),
            Sampler::AnnealedLangevin => StepCounts::new(100, 50, "on the MNIST digits, 20 levels of 5 Langevin steps do not leave the initial noise"),
            Sampler::OdeEuler => StepCounts::new(100, 100, "on the MNIST digits, at 50 steps Euler's first-order error blurs them into a few smooth shapes"),
            Sampler::OdeHeun => StepCounts::new(50, 25, "on the MNIST digits, 10 steps of the SDE's uniform time grid end in noise: the steps at small σ are too coarse"),
            Sampler::OdeRk45 => StepCounts::new(1, 1, "the step count is chosen by the solver"),
            Sampler::EdmHeun => StepCounts::new(18, 5, "on the MNIST digits, at 3 steps the σ grid is too coarse: faint, broken strokes"),
            Sampler::DpmSolver2M => StepCounts::new(17, 5, "on the MNIST digits, at 3 steps they blur into a grey haze"),
            Sampler::Consistency => StepCounts::new(1, 1, "one evaluation maps noise to an image; each further step re-noises and refines it"),
        }
    }
}

impl Default for SamplingDefaults {
    /// The library's starting points for a model nobody has measured.
    fn default() -> Self {
        Self {
            sampler: Sampler::DpmSolver2M,
            steps: BTreeMap::new(),
            guided: GuidedDefaults { sampler: Sampler::EdmHeun, steps: 18, churn: 40.0, scale: guidance::DEFAULT_GUIDANCE, min_sigma: guidance::DEFAULT_GUIDANCE_MIN_SIGMA },
            autoguidance: AutoguidanceDefaults { weight: autoguidance::DEFAULT_AUTOGUIDANCE, min_sigma: autoguidance::DEFAULT_AUTOGUIDANCE_MIN_SIGMA },
            consistency_levels: Vec::new(),
            source: STARTING_POINTS.into(),
        }
    }
}

impl SamplingDefaults {
    /// The steps `sampler` starts at on this model and the fewest allowed: the model's own
    /// measurement, else the library's starting point.
    pub fn steps_for(&self, sampler: Sampler) -> StepCounts {
        self.steps.get(sampler.name()).cloned().unwrap_or_else(|| sampler.starting_steps())
    }

    /// The re-noising levels of a run of `sampler` at `steps` on this model
    /// ([`super::SampleOptions::levels`]): the card's first `steps − 1` for `consistency` when it
    /// has that many, else none (the Karras grid).
    pub fn levels_for(&self, sampler: Sampler, steps: usize) -> Vec<f64> {
        match sampler {
            Sampler::Consistency if steps >= 2 && steps - 1 <= self.consistency_levels.len() => self.consistency_levels[..steps - 1].to_vec(),
            _ => Vec::new(),
        }
    }

    /// Checks what a card says, naming the `sampling.*` field at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, counts) in &self.steps {
            let sampler: Sampler = name.parse().map_err(|e| ConfigError::invalid("sampling.steps", format!("{e}")))?;
            if !(1..=counts.default).contains(&counts.min) || counts.default > super::MAX_STEPS {
                return Err(ConfigError::invalid("sampling.steps", format!("`{}`: needs 1 ≤ min ≤ default ≤ {}, got min {} and default {}", sampler.name(), super::MAX_STEPS, counts.min, counts.default)));
            }
        }
        let g = &self.guided;
        if !(self.steps_for(g.sampler).min..=super::MAX_STEPS).contains(&g.steps) {
            return Err(ConfigError::invalid("sampling.guided.steps", format!("must be at least {}'s fewest steps on this model ({}), got {}", g.sampler.name(), self.steps_for(g.sampler).min, g.steps)));
        }
        if !(g.churn.is_finite() && (0.0..=super::MAX_CHURN).contains(&g.churn)) {
            return Err(ConfigError::invalid("sampling.guided.churn", format!("must be in [0, {}], got {}", super::MAX_CHURN, g.churn)));
        }
        if !(g.scale.is_finite() && (0.0..=guidance::MAX_GUIDANCE).contains(&g.scale)) {
            return Err(ConfigError::invalid("sampling.guided.scale", format!("must be in [0, {}], got {}", guidance::MAX_GUIDANCE, g.scale)));
        }
        let a = &self.autoguidance;
        if !(a.weight.is_finite() && (1.0..=autoguidance::MAX_AUTOGUIDANCE).contains(&a.weight)) {
            return Err(ConfigError::invalid("sampling.autoguidance.weight", format!("must be in [1, {}], got {}", autoguidance::MAX_AUTOGUIDANCE, a.weight)));
        }
        for (field, sigma) in [("sampling.guided.min_sigma", g.min_sigma), ("sampling.autoguidance.min_sigma", a.min_sigma)] {
            if !(sigma.is_finite() && sigma >= 0.0) {
                return Err(ConfigError::invalid(field, format!("must be a noise level ≥ 0, got {sigma}")));
            }
        }
        if !self.consistency_levels.is_empty() && !self.sampler.is_consistency() {
            return Err(ConfigError::invalid("sampling.consistency_levels", format!("re-noise a consistency model's runs; this card samples with `{}`", self.sampler.name())));
        }
        if let Some((i, level)) = super::misplaced_level(&self.consistency_levels, 0.0, f64::INFINITY) {
            return Err(ConfigError::invalid("sampling.consistency_levels", format!("level {i} is {level}; each must be a positive noise level below the one before")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::SampleOptions;

    /// A model's run starts at its own sampler and that sampler's steps on it; samplers it has
    /// not measured start at the library's counts.
    #[test]
    fn a_models_default_run_is_its_own() {
        let mut d = SamplingDefaults { sampler: Sampler::EdmHeun, ..SamplingDefaults::default() };
        d.steps.insert("edm-heun".into(), StepCounts::new(30, 12, "grey at 8"));
        let run = SampleOptions::for_model(&d);
        assert_eq!((run.sampler, run.steps), (Sampler::EdmHeun, 30));
        assert_eq!(d.steps_for(Sampler::OdeHeun), Sampler::OdeHeun.starting_steps());
        let library = SampleOptions::default();
        assert_eq!((library.sampler, library.steps), (Sampler::DpmSolver2M, Sampler::DpmSolver2M.starting_steps().default));
        d.validate().unwrap();
        SamplingDefaults::default().validate().unwrap();
    }

    /// A card's settings are checked, and the field at fault is named.
    #[test]
    fn bad_settings_name_their_field() {
        let field = |d: SamplingDefaults| match d.validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut d = SamplingDefaults::default();
        d.steps.insert("dpmpp-2m".into(), StepCounts::new(4, 5, ""));
        assert_eq!(field(d), "sampling.steps");
        let mut d = SamplingDefaults::default();
        d.steps.insert("euler".into(), StepCounts::new(10, 5, ""));
        assert_eq!(field(d), "sampling.steps");
        let d = SamplingDefaults { guided: GuidedDefaults { steps: 2, ..SamplingDefaults::default().guided }, ..SamplingDefaults::default() };
        assert_eq!(field(d), "sampling.guided.steps");
        let d = SamplingDefaults { guided: GuidedDefaults { scale: f64::NAN, ..SamplingDefaults::default().guided }, ..SamplingDefaults::default() };
        assert_eq!(field(d), "sampling.guided.scale");
        let d = SamplingDefaults { autoguidance: AutoguidanceDefaults { weight: 0.5, min_sigma: 1.0 }, ..SamplingDefaults::default() };
        assert_eq!(field(d), "sampling.autoguidance.weight");
        let d = SamplingDefaults { autoguidance: AutoguidanceDefaults { weight: 2.0, min_sigma: -1.0 }, ..SamplingDefaults::default() };
        assert_eq!(field(d), "sampling.autoguidance.min_sigma");
        let consistency = SamplingDefaults { sampler: Sampler::Consistency, consistency_levels: vec![1.5, 0.5], ..SamplingDefaults::default() };
        consistency.validate().unwrap();
        assert_eq!(field(SamplingDefaults { sampler: Sampler::EdmHeun, ..consistency.clone() }), "sampling.consistency_levels");
        for levels in [vec![1.5, 1.5], vec![0.5, 1.5], vec![-1.0], vec![f64::INFINITY]] {
            assert_eq!(field(SamplingDefaults { consistency_levels: levels, ..consistency.clone() }), "sampling.consistency_levels");
        }
    }

    /// A consistency model's measured levels serve every run short enough to take its first
    /// N − 1 (so the page's step control moves along one greedy sequence); longer runs, runs of
    /// other samplers and one-step runs take none.
    #[test]
    fn measured_levels_serve_runs_up_to_their_length() {
        let d = SamplingDefaults { sampler: Sampler::Consistency, consistency_levels: vec![1.4, 0.5, 0.1], ..SamplingDefaults::default() };
        assert_eq!(d.levels_for(Sampler::Consistency, 1), Vec::<f64>::new());
        assert_eq!(d.levels_for(Sampler::Consistency, 2), vec![1.4]);
        assert_eq!(d.levels_for(Sampler::Consistency, 4), vec![1.4, 0.5, 0.1]);
        assert_eq!(d.levels_for(Sampler::Consistency, 5), Vec::<f64>::new());
        assert_eq!(d.levels_for(Sampler::EdmHeun, 2), Vec::<f64>::new());
        let mut d = d;
        d.steps.insert("consistency".into(), StepCounts::new(3, 1, ""));
        assert_eq!(SampleOptions::for_model(&d).levels, vec![1.4, 0.5]);
    }

    /// The shipped MNIST card measured its own settings and says so; a card without the section
    /// reads as the library's starting points.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn the_shipped_card_carries_its_measured_settings() {
        let card = crate::store::ModelCard::from_json(&std::fs::read_to_string("www/models/mnist.json").unwrap()).unwrap();
        assert_eq!(card.sampling.sampler, Sampler::DpmSolver2M);
        assert_eq!(card.sampling.steps.len(), Sampler::ALL.len(), "every sampler measured");
        assert!(card.sampling.source.contains("measured on these weights"));
        let mut value: serde_json::Value = serde_json::from_str(&card.to_json()).unwrap();
        value.as_object_mut().unwrap().remove("sampling");
        let bare = crate::store::ModelCard::from_json(&value.to_string()).unwrap();
        assert_eq!(bare.sampling, SamplingDefaults::default());
        assert_eq!(bare.sampling.source, STARTING_POINTS);
    }
}
