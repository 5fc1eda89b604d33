//! The one place where a run's score is put together: the model, autoguided by its guide model
//! where a run asks for it, then guided by a classifier where a run asks for a class.
//!
//! The web API, `scorefield sample`, `inpaint` and `evaluate` all sample with a [`RunScore`];
//! what each adds is where the pieces come from (fetched, read from files) and which run options
//! ask for them.

use burn::prelude::*;

use crate::error::SampleError;
use crate::model::ScoreModel;
use crate::nn::classifier::NoisyClassifier;
use crate::sampling::autoguidance::{Autoguidance, Autoguided};
use crate::sampling::guidance::{Guidance, Guided};
use crate::sampling::{self, Known, Observer, SampleOptions, Samples};
use crate::score::ScoreFn;

/// s(x, t) of a run: w_c·∇ log p_t(y | x) added to the autoguided score
/// s_guide + w_a·(s_model − s_guide) (each term only where its noise interval says), or the
/// model's score alone when neither is asked for.
pub struct RunScore<'a> {
    model: &'a ScoreModel,
    score: Guided<'a, Autoguided<'a, ScoreModel, ScoreModel>, NoisyClassifier>,
}

impl<'a> RunScore<'a> {
    /// Checks the autoguidance weight and the guidance's classes and scale against the
    /// classifier before anything runs.
    /// A consistency model takes neither: guidance and autoguidance act on scores.
    pub fn new(model: &'a ScoreModel, guide: Option<(&'a ScoreModel, Autoguidance)>, classifier: Option<(&'a NoisyClassifier, Guidance)>) -> Result<Self, SampleError> {
        if model.param.is_consistency() && (guide.is_some() || classifier.is_some()) {
            let what = if classifier.is_some() { "classifier guidance (a class)" } else { "autoguidance" };
            return Err(SampleError::invalid("model", format!("is a consistency model, which takes no {what}: guidance acts on the scores of score models")));
        }
        let auto = Autoguided::new(model, model.sde, guide)?;
        Ok(Self { model, score: Guided::new(auto, model.sde, classifier)? })
    }

    /// Draws `shape`-shaped samples with the run's sampler: a consistency model with
    /// `consistency` ([`sampling::consistency`]), a score model with any other; the wrong pairing
    /// is refused, naming both.
    pub async fn sample<O: Observer>(&self, shape: [usize; 4], options: &SampleOptions, device: &Device, observer: &mut O) -> Result<Samples, SampleError> {
        match self.kind(options)? {
            Kind::Consistency => sampling::consistency::sample(self.model, &self.model.sde, shape, options, device, observer).await,
            Kind::Score => sampling::sample(self, &self.model.sde, shape, options, device, observer).await,
        }
    }

    /// Fills in the pixels where the mask is 0, with the run's sampler (as [`RunScore::sample`]).
    pub async fn inpaint<O: Observer>(&self, known: &Known, options: &SampleOptions, observer: &mut O) -> Result<Samples, SampleError> {
        match self.kind(options)? {
            Kind::Consistency => sampling::consistency::inpaint(self.model, &self.model.sde, known, options, observer).await,
            Kind::Score => sampling::inpaint::inpaint(self, &self.model.sde, known, options, observer).await,
        }
    }

    fn kind(&self, options: &SampleOptions) -> Result<Kind, SampleError> {
        match (self.model.param.is_consistency(), options.sampler.is_consistency()) {
            (true, true) => Ok(Kind::Consistency),
            (false, false) => Ok(Kind::Score),
            (true, false) => Err(SampleError::invalid("sampler", format!("`{}` samples score models; this is a consistency model, which samples with `consistency`", options.sampler.name()))),
            (false, true) => Err(SampleError::invalid("sampler", format!("`consistency` samples consistency models; this is a score model (parameterisation `{}`): choose one of its samplers", self.model.param.name()))),
        }
    }

    /// How many times the guide model was evaluated so far (for a whole batch each time): a
    /// run's cost in network evaluations is its sampler's count plus this.
    pub fn guide_evals(&self) -> usize {
        self.score.inner().bad_evals()
    }
}

/// The model as a score function, for what needs one besides sampling (`what`: the likelihood
/// and the encoding into the prior integrate the probability-flow ODE of the score); a
/// consistency model has none, and is refused by name.
pub fn as_score<'a>(model: &'a ScoreModel, what: &str) -> Result<&'a ScoreModel, SampleError> {
    if model.param.is_consistency() {
        return Err(SampleError::invalid("model", format!("is a consistency model, which has no score: {what} needs a score model")));
    }
    Ok(model)
}

enum Kind {
    Score,
    Consistency,
}

impl ScoreFn for RunScore<'_> {
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        self.score.score(x, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Network;
    use crate::nn::ncsn::ScoreNetConfig;
    use crate::precond::Parameterisation;
    use crate::sampling::{Sampler, no_observer};
    use crate::score::ConsistencyFn;
    use crate::sde::Sde;

    fn model(param: Parameterisation) -> ScoreModel {
        let cfg = ScoreNetConfig { height: 8, width: 8, widths: vec![8, 16], embed_dim: 16, ..Default::default() };
        ScoreModel { net: Network::Ncsn(cfg.init(&Device::flex()).unwrap()), param, sde: Sde::ve(40.0) }
    }

    fn run(model: &ScoreModel, sampler: Sampler, steps: usize) -> Result<Samples, SampleError> {
        let options = SampleOptions { sampler, steps, ..SampleOptions::default() };
        pollster::block_on(RunScore::new(model, None, None)?.sample([2, 1, 8, 8], &options, &Device::flex(), &mut no_observer()))
    }

    /// A consistency model samples with `consistency` only (one network evaluation a step) and
    /// a score model with anything else; each wrong pairing is refused naming the sampler and the
    /// kind of model, and a consistency model takes no guidance.
    #[test]
    fn consistency_and_score_models_each_take_their_own_samplers() {
        let cm = model(Parameterisation::Consistency { sigma_data: 0.3, sigma_min: 0.002 });
        let edm = model(Parameterisation::Edm { sigma_data: 0.3 });
        assert_eq!(run(&cm, Sampler::Consistency, 2).unwrap().evals, 2);
        assert_eq!(run(&edm, Sampler::DpmSolver2M, 2).unwrap().evals, 2);
        let err = run(&cm, Sampler::DpmSolver2M, 2).err().unwrap().to_string();
        assert!(err.contains("`dpmpp-2m`") && err.contains("consistency model"), "{err}");
        let err = run(&edm, Sampler::Consistency, 2).err().unwrap().to_string();
        assert!(err.contains("`consistency`") && err.contains("score model") && err.contains("edm"), "{err}");
        let err = RunScore::new(&cm, Some((&edm, crate::sampling::autoguidance::Autoguidance::new(2.0))), None).err().unwrap().to_string();
        assert!(err.contains("consistency model") && err.contains("autoguidance"), "{err}");
    }

    /// What needs a score (the likelihood, the encoding into the prior) refuses a consistency
    /// model, naming what it was asked for; a score model passes.
    #[test]
    fn a_consistency_model_has_no_score_to_integrate() {
        let cm = model(Parameterisation::Consistency { sigma_data: 0.3, sigma_min: 0.002 });
        let err = as_score(&cm, "the likelihood").err().unwrap().to_string();
        assert!(err.contains("consistency model") && err.contains("the likelihood"), "{err}");
        assert!(as_score(&model(Parameterisation::Edm { sigma_data: 0.3 }), "the likelihood").is_ok());
    }

    /// The boundary condition through a real (untrained, non-zero) network: f(x̂, σ_min) = x̂
    /// exactly, since c_skip(σ_min) = 1 and c_out(σ_min) = 0; above σ_min the network counts.
    #[test]
    fn a_consistency_model_returns_its_input_at_sigma_min() {
        let cm = model(Parameterisation::Consistency { sigma_data: 0.3, sigma_min: 0.002 });
        let x = Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &Device::flex());
        let at_min = cm.origin(x.clone(), 0.002);
        assert_eq!(at_min.into_data().try_to_vec::<f32>().unwrap(), x.clone().into_data().try_to_vec::<f32>().unwrap());
        let above: f32 = (cm.origin(x.clone(), 1.0) - x * 0.3f32.powi(2) / (0.998f32.powi(2) + 0.09)).abs().max().into_scalar();
        assert!(above > 1e-3, "the network's output is missing at σ = 1: {above}");
    }
}
