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
use crate::score::ScoreFn;

/// s(x, t) of a run: w_c·∇ log p_t(y | x) added to the autoguided score
/// s_guide + w_a·(s_model − s_guide) (each term only where its noise interval says), or the
/// model's score alone when neither is asked for.
pub struct RunScore<'a> {
    score: Guided<'a, Autoguided<'a, ScoreModel, ScoreModel>, NoisyClassifier>,
}

impl<'a> RunScore<'a> {
    /// Checks the autoguidance weight and the guidance's classes and scale against the
    /// classifier before anything runs.
    pub fn new(model: &'a ScoreModel, guide: Option<(&'a ScoreModel, Autoguidance)>, classifier: Option<(&'a NoisyClassifier, Guidance)>) -> Result<Self, SampleError> {
        let auto = Autoguided::new(model, model.sde, guide)?;
        Ok(Self { score: Guided::new(auto, model.sde, classifier)? })
    }

    /// How many times the guide model was evaluated so far (for a whole batch each time): a
    /// run's cost in network evaluations is its sampler's count plus this.
    pub fn guide_evals(&self) -> usize {
        self.score.inner().bad_evals()
    }
}

impl ScoreFn for RunScore<'_> {
    fn score(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        self.score.score(x, t)
    }
}
