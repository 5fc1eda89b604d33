//! What moves the explainer's particles: Langevin dynamics at one noise level, the forward SDE, or
//! one of the samplers on a time grid, as the page and the widget name and describe them.

use std::str::FromStr;

use serde::Serialize;

use super::Start;
use crate::error::SampleError;
use crate::sampling::Sampler;

/// What moves the particles: Langevin dynamics at one noise level, or one of the samplers that run
/// on a time grid (the predictor–corrector family: the others are the same ODE with other steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dynamics {
    /// The forward SDE from data samples, t from 0 to T: what the samplers undo.
    Forward,
    /// x ← x + (α/2) ∇ log p_σ(x) + √α z at a fixed σ (Song & Ermon 2019, eq. 4), from uniform
    /// noise over the view.
    Langevin,
    /// One of [`Dynamics::SAMPLERS`]; annealed Langevin starts from uniform noise as in Song &
    /// Ermon 2019, the others from the SDE's prior.
    Sampler(Sampler),
}

/// A dynamics as the page and the widget describe it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamicsInfo {
    pub name: &'static str,
    pub label: &'static str,
    pub paper: &'static str,
    pub default_steps: usize,
    pub default_corrector_steps: Option<usize>,
    /// Where the particles start: `prior` (the SDE's p_T), `uniform` (over the view) or `data`.
    pub start: &'static str,
    /// Whether it runs at one noise level (`sigma`, `stepSize`).
    pub fixed_sigma: bool,
}

impl Dynamics {
    /// What the explainer runs first: the method whose picture fixes Langevin's failure.
    pub const DEFAULT: Dynamics = Dynamics::Sampler(Sampler::AnnealedLangevin);

    /// Every dynamics, in the order of the story: noising the data, Langevin, its annealed fix,
    /// the reverse SDE, the probability-flow ODE.
    pub const ALL: [Dynamics; 8] = [
        Dynamics::Forward,
        Dynamics::Langevin,
        Dynamics::Sampler(Sampler::AnnealedLangevin),
        Dynamics::Sampler(Sampler::EulerMaruyama),
        Dynamics::Sampler(Sampler::PredictorCorrector),
        Dynamics::Sampler(Sampler::ReverseDiffusion),
        Dynamics::Sampler(Sampler::OdeHeun),
        Dynamics::Sampler(Sampler::OdeEuler),
    ];

    pub fn info(self) -> DynamicsInfo {
        let (label, paper, default_corrector_steps) = match self {
            Dynamics::Forward => ("Forward SDE: data to noise", "Song et al. 2021, eq. 5", None),
            Dynamics::Langevin => ("Langevin dynamics at one noise level", "Song & Ermon 2019, eq. 4", None),
            Dynamics::Sampler(s) => {
                let info = s.about();
                let corrector = match s {
                    Sampler::AnnealedLangevin => Some(crate::sampling::DEFAULT_ALD_STEPS_PER_LEVEL),
                    Sampler::PredictorCorrector => Some(1),
                    _ => None,
                };
                (info.label, info.paper, corrector)
            }
        };
        DynamicsInfo {
            name: self.name(),
            label,
            paper,
            default_steps: self.default_steps(),
            default_corrector_steps,
            start: self.start().name(),
            fixed_sigma: self == Dynamics::Langevin,
        }
    }

    /// The samplers the explainer runs.
    pub const SAMPLERS: [Sampler; 6] = [
        Sampler::AnnealedLangevin,
        Sampler::EulerMaruyama,
        Sampler::PredictorCorrector,
        Sampler::ReverseDiffusion,
        Sampler::OdeHeun,
        Sampler::OdeEuler,
    ];

    /// Where its particles start: the data for the forward SDE, uniformly over the view for
    /// Langevin and annealed Langevin (as Song & Ermon 2019 start them), else the prior.
    pub(super) fn start(self) -> Start {
        match self {
            Dynamics::Forward => Start::Data,
            Dynamics::Langevin | Dynamics::Sampler(Sampler::AnnealedLangevin) => Start::Uniform,
            Dynamics::Sampler(_) => Start::Prior,
        }
    }

    /// What to change when a run produced NaN or ±∞.
    pub fn if_non_finite(self) -> &'static str {
        match self {
            Dynamics::Forward => "try more steps",
            Dynamics::Langevin => "try a smaller stepSize",
            Dynamics::Sampler(s) => s.if_non_finite(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dynamics::Forward => "forward",
            Dynamics::Langevin => "langevin",
            Dynamics::Sampler(s) => s.name(),
        }
    }

    /// Steps a run starts with: Song & Ermon 2019's toy runs take 1,000 Langevin steps, and 10
    /// levels of 100 steps from σ = 20 down to 1; the field's levels run from 50 to 0.01, so 20
    /// levels keep as many in the band where the modes part (10 give the heavy mode 0.76 instead
    /// of 0.8). The reverse SDE and the ODE run on fine grids: points are cheap.
    pub fn default_steps(self) -> usize {
        match self {
            Dynamics::Langevin => 1000,
            Dynamics::Forward => 500,
            Dynamics::Sampler(Sampler::AnnealedLangevin) => 20,
            Dynamics::Sampler(Sampler::OdeHeun) => 100,
            Dynamics::Sampler(_) => 500,
        }
    }
}

impl FromStr for Dynamics {
    type Err = SampleError;
    fn from_str(s: &str) -> Result<Self, SampleError> {
        match s {
            "langevin" => return Ok(Dynamics::Langevin),
            "forward" => return Ok(Dynamics::Forward),
            _ => {}
        }
        match Dynamics::SAMPLERS.into_iter().find(|m| m.name() == s) {
            Some(m) => Ok(Dynamics::Sampler(m)),
            None => {
                let names: Vec<_> = Dynamics::ALL.iter().map(|d| d.name()).collect();
                Err(SampleError::invalid("sampler", format!("is `{s}`; the field runs {}", names.join(", "))))
            }
        }
    }
}
